"""A minimal agent connection with a heartbeat and a class-based trigger.

Run: python examples/heartbeat_agent.py
"""

from __future__ import annotations

import asyncio

from agent_triggers import Trigger, TriggerContext, TriggerDelivery, TriggerRunner, every


class PrintingConnection:
    """Stands in for an agent connection: prints what it receives."""

    async def send_trigger(self, content: str) -> None:
        print(f"agent received: {content}")


class Greeter(Trigger):
    """Says hello once, right away, even if the agent is busy."""

    name = "greeter"
    delivery = TriggerDelivery.SEND_IMMEDIATELY

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.deliver("hello from a class-based trigger")


async def heartbeat(ctx: TriggerContext) -> None:
    await ctx.send_when_idle("still here")


async def main(seconds: float = 1.2) -> None:
    runner = TriggerRunner([Greeter(), every(0.5, heartbeat)], PrintingConnection())
    async with runner:
        await asyncio.sleep(seconds)


if __name__ == "__main__":
    asyncio.run(main())
