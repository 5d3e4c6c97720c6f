"""One agent service, three replicas, one Redis: each tick of a keyed trigger runs
on exactly one replica, and a replica that stops hands its ticks to the others.

Run: REDIS_URL=redis://localhost:6379/0 python examples/fleet_agent.py

In production each replica is its own process (or machine) running the same code
with the same keys; here three runners in one process play the three replicas.
"""

from __future__ import annotations

import asyncio
import os

from agent_triggers import RedisFleet, TriggerContext, TriggerRunner, every


class PrintingConnection:
    """Stands in for one replica's agent connection: prints what it receives."""

    def __init__(self, replica: str) -> None:
        self.replica = replica

    async def send_trigger(self, content: str) -> None:
        print(f"agent received on {self.replica}: {content}")


async def check_inbox(ctx: TriggerContext) -> None:
    due = ctx.scheduled_at  # the same instant on every replica
    assert due is not None
    await ctx.send(f"check the inbox (tick due {due:%H:%M:%S.%f})")


def replica(url: str, name: str) -> TriggerRunner:
    return TriggerRunner(
        [every(0.5, check_inbox, key="inbox")],  # the key names the trigger fleet-wide
        PrintingConnection(name),
        fleet=RedisFleet(url, replica=name),  # the URL's password never shows in logs
    )


async def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    replicas = [replica(url, name) for name in ("replica-a", "replica-b", "replica-c")]
    for runner in replicas:
        await runner.start()
    await asyncio.sleep(2)
    await replicas[0].stop()  # replica-a leaves: its unrun claim, if any, is given back
    print("replica-a stopped; the others carry on")
    await asyncio.sleep(1.5)
    for runner in replicas[1:]:
        await runner.stop()


if __name__ == "__main__":
    asyncio.run(main())
