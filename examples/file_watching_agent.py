"""An agent told about new files in a folder, as they land.

Run: python examples/file_watching_agent.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from agent_triggers import FileChange, FileChangeKind, TriggerContext, TriggerRunner, on_file_change


class PrintingConnection:
    """Stands in for an agent connection: prints what it receives."""

    async def send_trigger(self, content: str) -> None:
        print(f"agent received: {content}")


async def new_documents(ctx: TriggerContext, changes: list[FileChange]) -> None:
    added = [Path(change.path).name for change in changes if change.kind is FileChangeKind.ADDED]
    if added:
        await ctx.send_when_idle(f"new documents to read: {', '.join(sorted(added))}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as inbox:
        runner = TriggerRunner([on_file_change(inbox, new_documents)], PrintingConnection())
        async with runner:
            await asyncio.sleep(0.1)  # the watch is in place
            for name in ("report.md", "invoice.pdf"):
                (Path(inbox) / name).write_text("...")
            await asyncio.sleep(0.5)  # one batch, after the 50 ms debounce window


if __name__ == "__main__":
    asyncio.run(main())
