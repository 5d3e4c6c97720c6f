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
