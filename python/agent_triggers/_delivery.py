"""How a trigger's messages reach the agent: now, or once it is idle."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent_triggers._awaiting import checkpoint


class TriggerDelivery(str, enum.Enum):
    """Whether a trigger's messages wait for the agent to be idle.

    ``ctx.deliver(content)`` follows the owning trigger's delivery.
    """

    WAIT_IDLE = "wait_idle"
    """Wait until the agent is idle, then send: never interrupts a turn (default)."""

    SEND_IMMEDIATELY = "send_immediately"
    """Send at once, even while the agent is mid-turn."""

    INTERRUPT = "interrupt"
    """Stop the agent's current turn (``await connection.cancel()``), then send."""


async def send_when_idle(
    wait_for_idle: Callable[[], Awaitable[object]] | None,
    ctx: _KnowsIdle,
    send: Callable[[str], Awaitable[object]],
    content: str,
) -> None:
    """Await ``wait_for_idle()`` (when the connection has one), then ``send(content)``.

    The awaitable behind ``TriggerContext.send_when_idle``: both steps run in the
    awaiting task, so cancelling it cancels whichever step is under way. The two
    callables are the connection's methods as ``ctx.send`` calls them: looked up
    at the call, and a ``TypeError`` naming the method if it is not async.

    The agent may start another turn between going idle and this task resuming
    (a user's prompt, another trigger's send): then ``ctx.is_idle`` is ``False``
    again and the wait starts over, so the send is made, in the same step as
    that check, into an idle agent. A connection whose ``wait_for_idle()``
    returns while its ``is_idle`` stays ``False`` keeps this waiting (yielding
    to the loop each time) until the two agree.
    """
    if wait_for_idle is None:
        await send(content)
        return
    await wait_for_idle()
    while not ctx.is_idle:
        await checkpoint()  # the loop runs on, even for a contradictory connection
        await wait_for_idle()
    await send(content)


async def interrupt_then_send(
    cancel: Callable[[], Awaitable[object]],
    send: Callable[[str], Awaitable[object]],
    content: str,
) -> None:
    """Await ``cancel()`` (the agent's turn is stopped), then ``send(content)``.

    The awaitable behind an ``INTERRUPT`` delivery; both steps run in the
    awaiting task, so cancelling it cancels whichever step is under way.
    """
    await cancel()
    await send(content)


class _KnowsIdle(Protocol):
    @property
    def is_idle(self) -> bool: ...
