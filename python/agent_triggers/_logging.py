"""How trigger failures are reported: one format for the Rust and Python paths."""

from __future__ import annotations

import logging

logger = logging.getLogger("agent_triggers")


def report_failure(trigger_name: str, exc: BaseException) -> None:
    """Log that ``trigger_name`` raised ``exc``, with its traceback, at ERROR."""
    logger.error(
        "trigger %r failed: %s: %s",
        trigger_name,
        type(exc).__name__,
        exc,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def report_abandoned(unfinished: list[str], timeout: float) -> None:
    """Log, at WARNING, what ``stop(timeout=...)`` gave up waiting for."""
    logger.warning(
        "stop(timeout=%g) gave up waiting after %g s; abandoned, still running: %s",
        timeout,
        timeout,
        ", ".join(repr(name) for name in unfinished) or "(nothing: it finished meanwhile)",
    )


def report_paused(trigger_name: str, failures: int) -> None:
    """Log, at WARNING, that a trigger paused itself (``max_consecutive_failures``)."""
    logger.warning(
        "trigger %r paused itself after %d failing calls in a row "
        "(max_consecutive_failures=%d); runner.resume(%r) starts it again",
        trigger_name,
        failures,
        failures,
        trigger_name,
    )
