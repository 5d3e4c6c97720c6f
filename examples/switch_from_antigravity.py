"""Switching from ``google.antigravity.triggers``: change the import, keep the code.

Code written for the Antigravity SDK's triggers::

    from google.antigravity.triggers import TriggerContext, every, trigger
    from google.antigravity.triggers.trigger_runner import TriggerRunner

runs unchanged with::

    from agent_triggers import TriggerContext, TriggerRunner, every, trigger

— including an Antigravity connection, which has ``send_trigger_notification``
rather than ``send_trigger`` — and gains timing kept in Rust (no drift) and scale.

Run: python examples/switch_from_antigravity.py
"""

from __future__ import annotations

import asyncio

from agent_triggers import TriggerContext, TriggerRunner, every, trigger


class AntigravityStyleConnection:
    """The method an Antigravity connection offers to triggers."""

    async def send_trigger_notification(self, content: str) -> None:
        print(f"agent received: {content}")


@trigger
async def greet(ctx: TriggerContext) -> None:
    await ctx.send("session started")


async def check_calendar(ctx: TriggerContext) -> None:
    await ctx.send("no meetings in the next hour")


async def main() -> None:
    runner = TriggerRunner(
        triggers=[greet, every(0.5, check_calendar)],
        connection=AntigravityStyleConnection(),
    )
    await runner.start()
    await asyncio.sleep(1.2)
    await runner.stop()


if __name__ == "__main__":
    asyncio.run(main())
