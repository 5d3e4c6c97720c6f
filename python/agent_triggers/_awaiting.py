"""Awaiting the Rust core's futures from whichever library awaits them.

``runner.start()``, ``stop()``, ``remove()``, ``run_now()`` and a native
trigger's ``source.next()`` each return ``drive(awaiting)``: a plain coroutine
around a Rust future (``_core.Awaiting``). It polls the future on the awaiting
task's thread and, while it is pending, sleeps on the host's own primitive —
an asyncio future, or a trio event — which the future's waker sets from any
thread through the host's thread-safe entry (``call_soon_threadsafe``, the trio
token's ``run_sync_soon``). pyo3's own coroutines would yield asyncio futures,
which trio cannot await.

Cancelling the awaiting task drops the Rust future (``close()``): what it was
waiting for is no longer waited for, as when a Rust future is dropped. A
shielded drive (``async with runner``'s exit) is not cancelled by trio's
level-triggered cancellation: the exit waits for the triggers' cleanup, as a
nursery's does. asyncio's cancellation is edge-triggered: the block's own
cancellation has been delivered by the time the exit awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import TYPE_CHECKING, Any

import sniffio

if TYPE_CHECKING:
    from agent_triggers._core import Awaiting


async def drive(awaiting: Awaiting, shield: bool = False) -> Any:
    """Await ``awaiting`` to its result on the running host (asyncio or trio).

    ``shield``: under trio, the wait is not cancelled by enclosing scopes.
    """
    if _library() == "trio":
        if shield:
            import trio

            with trio.CancelScope(shield=True):
                return await _on_trio(awaiting)
        return await _on_trio(awaiting)
    return await _on_asyncio(awaiting)


async def checkpoint() -> None:
    """Let the running host (asyncio or trio) run other tasks once."""
    if _library() == "trio":
        import trio

        await trio.lowlevel.checkpoint()
    else:
        await asyncio.sleep(0)


def _library() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "asyncio"  # asyncio.get_running_loop() says what is wrong


async def _on_asyncio(awaiting: Awaiting) -> Any:
    loop = asyncio.get_running_loop()
    try:
        while True:
            woken = loop.create_future()
            done, result = awaiting.poll(partial(_wake_asyncio, loop, woken))
            if done:
                return result
            await woken
    finally:
        awaiting.close()


def _wake_asyncio(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None]) -> None:
    # A closed loop raises RuntimeError: nobody is left waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, woken)


def _resolve(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


async def _on_trio(awaiting: Awaiting) -> Any:
    import trio

    token = trio.lowlevel.current_trio_token()
    try:
        while True:
            woken = trio.Event()
            done, result = awaiting.poll(partial(_wake_trio, token, woken))
            if done:
                return result
            await woken.wait()
    finally:
        awaiting.close()


def _wake_trio(token: Any, woken: Any) -> None:
    import trio

    # The run is over: nobody is left waiting.
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(woken.set)
