"""The coroutine behind ``every(...)(ctx)``: a native trigger run on its own.

Under a ``TriggerRunner`` the schedule is driven from Rust. Called directly
(``asyncio.create_task(trig(ctx))``, or under another runner such as
Antigravity's), the trigger runs as this coroutine: the timing still comes from
the Rust ticker, and each callback runs inside the caller's task, so cancelling
that task cancels a callback mid-flight and waits for its cleanup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from agent_triggers._logging import report_failure

if TYPE_CHECKING:
    from agent_triggers._core import PeriodicTrigger


async def run_every(trigger: PeriodicTrigger, ctx: object) -> NoReturn:
    """Call ``trigger.callback(ctx)`` on the trigger's schedule until cancelled."""
    ticker = trigger._ticker()
    while True:
        await ticker.tick()
        try:
            await trigger.callback(ctx)
        except Exception as exc:  # noqa: BLE001 - a failing call must not end the schedule
            report_failure(trigger.name, exc)
