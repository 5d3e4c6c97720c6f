"""The body of a coroutine trigger's task under a ``TriggerRunner``.

``start()`` makes each coroutine trigger's task itself, in list order, before
it returns (Rust keeps the task's handle): an asyncio task on the calling loop,
or under trio a task of the runner's nursery (``_trio_host.run_call``). The
task runs this coroutine around the trigger, so that a trigger that fails is
logged within the very step that raises — a caller that resumes after
``await start(); await asyncio.sleep(0)`` finds the failure already logged, as
with Antigravity's own runner — rather than one loop iteration later, from a
done-callback.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable
from typing import Any

from agent_triggers._logging import report_failure


async def run_trigger(
    name: str,
    trigger: Callable[[Any], Any],
    record_failure: Callable[[BaseException], None],
    ctx: object,
) -> None:
    """Run ``trigger(ctx)`` to its end; log (not raise) how it failed, and tell
    ``record_failure`` (the runner's stats).

    A cancellation asked for (by ``stop()``, or the host's shutdown) goes on up,
    as do ``KeyboardInterrupt`` and ``SystemExit`` (the loop re-raises them) and
    ``GeneratorExit`` (the coroutine is being closed). A ``CancelledError`` the
    trigger's own code raised, with nobody cancelling the task, is a failure
    like any other (Python 3.11+ tells the two apart; before, every
    cancellation counts as asked for).
    """
    try:
        awaitable = trigger(ctx)
        if not hasattr(awaitable, "__await__"):
            raise TypeError(
                f"trigger {name!r} must return an awaitable (is it an async def?), "
                f"got {type(awaitable).__name__}"
            )
        await awaitable
    except asyncio.CancelledError as exc:
        if not _cancelled_by_nobody():
            raise
        report_failure(name, exc)
        record_failure(exc)
    except Exception as exc:  # noqa: BLE001 - a failing trigger must not disturb the loop
        report_failure(name, exc)
        record_failure(exc)
    except BaseException as exc:
        if not _stray_trio_cancellation(exc):
            raise
        report_failure(name, exc)
        record_failure(exc)


def _stray_trio_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``trio.Cancelled`` with nobody cancelling this task:
    let out of a cancel scope of the trigger's own, it is a failure like any other
    (trio's twin of asyncio's "cancelled by nobody")."""
    trio = sys.modules.get("trio")
    return (
        trio is not None
        and isinstance(exc, trio.Cancelled)
        and trio.current_effective_deadline() != -math.inf
    )


def _cancelled_by_nobody() -> bool:
    if sys.version_info < (3, 11):
        return False
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return True  # not on asyncio (trio): asyncio's cancellation is nobody's
    return task is not None and task.cancelling() == 0


async def nothing() -> None:
    """What a call that must not run after all (its trigger was paused while it
    waited for the loop) awaits instead of the trigger's callback."""
