"""The coroutine behind ``trig(ctx)`` for native triggers run on their own.

Under a ``TriggerRunner`` a native trigger (``every``, ``cron``, ``after``,
``at``, ``on_file_change``) is driven from Rust. Called directly
(``asyncio.create_task(trig(ctx))``, or under another runner such as
Antigravity's), it runs as this coroutine: the events still come from the Rust
source, and each callback runs inside the caller's task, so cancelling that task
cancels a callback mid-flight and waits for its cleanup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_triggers._logging import report_failure

if TYPE_CHECKING:
    from agent_triggers._core import NativeTrigger


async def run_native(trigger: NativeTrigger, ctx: object) -> None:
    """Call ``trigger.callback(ctx, ...)`` for each event until cancelled or exhausted."""
    source = trigger._source()
    while (extra := await source.next()) is not None:
        try:
            await trigger.callback(ctx, *extra)
        except Exception as exc:  # noqa: BLE001 - a failing call must not end the trigger
            report_failure(trigger.name, exc)
