"""The same triggers under trio: the runner notices trio at `start()`.

A trio program's triggers run as trio tasks in a nursery the runner keeps, with
the caller's contextvars; `stop()` (here, the end of `async with`) cancels them —
each sees `trio.Cancelled` at its next checkpoint — and returns once their
`finally` blocks, shielded cleanup included, have run.

Run: python examples/trio_agent.py
"""

from __future__ import annotations

import trio

from agent_triggers import TriggerContext, TriggerRunner, every


class PrintingConnection:
    """Stands in for an agent connection: prints what it receives."""

    async def send_trigger(self, content: str) -> None:
        print(f"agent received: {content}")


async def heartbeat(ctx: TriggerContext) -> None:
    await ctx.send_when_idle("still here")


async def inbox(ctx: TriggerContext) -> None:
    """A trigger of your own: waits on any trio event, sends when it comes."""
    mail_send, mail_receive = trio.open_memory_channel[str](10)
    async with mail_send, mail_receive:
        await mail_send.send("the quarterly report")
        try:
            async for mail in mail_receive:
                await ctx.send(f"new mail: {mail}")
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.01)  # cleanup that awaits: stop() waits for it
                print("inbox closed")


async def main(seconds: float = 1.2) -> None:
    async with TriggerRunner([every(0.5, heartbeat), inbox], PrintingConnection()):
        await trio.sleep(seconds)


if __name__ == "__main__":
    trio.run(main)
