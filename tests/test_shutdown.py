"""A runner whose event loop closes while it is started (asyncio.run returns
without stop()), then is collected: nothing of it survives, nothing fires."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref

import pytest

from agent_triggers import TriggerRunner, every

from conftest import FakeConnection


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_runner_left_started_on_a_closed_loop_is_collected_whole() -> None:
    callbacks: list[weakref.ref[object]] = []
    runners: list[TriggerRunner] = []  # outlive their loops, as in a long-lived app
    fired_after_close: list[int] = []
    closed = False

    async def session() -> None:
        async def tick(ctx: object) -> None:
            if closed:
                fired_after_close.append(1)

        callbacks.append(weakref.ref(tick))
        runner = TriggerRunner([every(0.002, tick)], FakeConnection())
        runners.append(runner)
        await runner.start()
        await asyncio.sleep(0.05)
        # returns with the runner started: asyncio.run closes the loop

    before = open_fds()
    for _ in range(5):
        asyncio.run(session())
    closed = True
    asyncio.run(asyncio.sleep(0.1))  # ticks come due meanwhile, into closed loops
    runners.clear()
    gc.collect()
    assert [ref() for ref in callbacks] == [None] * 5, "callbacks still alive"
    assert open_fds() <= before, "file descriptors leaked"
    assert fired_after_close == []
