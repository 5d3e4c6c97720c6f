"""The trio side of a runner started under trio (docs/contract.md §7).

A runner started in a trio run keeps a nursery there: ``serve`` runs as a
system task (so the run's end cancels it, as ``asyncio.run()`` ending closes
a loop) and opens the nursery that every Python call of the runner runs in,
as a trio task inside the contextvars captured by ``start()``. The Rust side
queues calls from any thread and rings a socket; ``serve`` wakes on it
(``wait_readable``) and starts the whole batch. Cancelling a call is
cancelling its own ``CancelScope``: the trigger sees ``trio.Cancelled`` at
its next checkpoint, and its cleanup runs before the call counts as ended.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from agent_triggers._core import TrioServing


async def serve(serving: TrioServing) -> None:
    """Run the runner's calls until its host is gone or the trio run ends.

    The nursery outlives every call in it: this returns only once each has
    finished (a call abandoned by ``stop(timeout)`` included), and then tells
    the host it can run nothing more.
    """
    try:
        async with trio.open_nursery() as nursery:
            serving.opened(nursery)
            while serving.drain():
                await trio.lowlevel.wait_readable(serving.fileno())
    finally:
        serving.closed()


# Ctrl-C never lands inside a trigger: trio delivers it to the main task,
# whose unwinding (``async with runner``) stops the runner cleanly.
@trio.lowlevel.enable_ki_protection
async def run_call(
    awaitable: Awaitable[object],
    scope: trio.CancelScope,
    done: Callable[[BaseException | None], None],
) -> None:
    """Await one call inside ``scope`` and tell ``done`` how it ended: ``None``
    (returned, or cancelled), or the exception it failed with."""
    try:
        with scope:
            if trio.current_effective_deadline() == -math.inf:
                # Cancelled before its first step (a stop right after start(),
                # the run ending): it never runs, as under asyncio — closed,
                # not left "never awaited".
                close = getattr(awaitable, "close", None)
                if close is not None:
                    close()
            else:
                await awaitable
    except trio.Cancelled as exc:
        if trio.current_effective_deadline() == -math.inf:
            # Not this call's scope (that one stops here): the run is ending.
            done(None)
            raise
        # Nobody cancels this task: a Cancelled the call's own code let out of
        # some scope of its own is its failure (as asyncio's "cancelled by nobody").
        done(exc)
    except BaseException as exc:  # noqa: BLE001 - the call's outcome, reported by the host
        done(exc)
    else:
        done(None)
