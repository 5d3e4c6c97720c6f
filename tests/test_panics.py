# pyright: reportPrivateUsage=false
"""A Rust panic in any path becomes a Python exception or a logged error; the
process goes on. Panics are injected at each site through the private
`_core._inject_panic` hook (armed for one pass), in the build users install."""

from __future__ import annotations

import logging

import anyio
import pytest

from agent_triggers import (
    AlreadyStartedError,
    TriggerContext,
    TriggerRunner,
    _core,
    cron,
    every,
)
from agent_triggers._core import CronTrigger, PeriodicTrigger

from conftest import FakeConnection, bounded, error_records, running, stays_false, wait_for


def records_mentioning(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in error_records(caplog) if text in r.getMessage()]


def test_a_panic_in_a_call_is_a_python_exception() -> None:
    with pytest.raises(BaseException, match="panic injected") as excinfo:
        _core._inject_panic("now")
    assert type(excinfo.value).__name__ == "PanicException"


def test_an_unknown_site_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"no panic site named .nowhere."):
        _core._inject_panic("nowhere")


async def test_a_panic_in_a_trigger_task_is_logged_and_isolated(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    # Native triggers other than `every` each run as a tokio task driving
    # their source (coroutine triggers and `every` have none): a cron trigger
    # firing every second is the quickest such task.
    def sender(name: str) -> CronTrigger:
        async def send(ctx: TriggerContext) -> None:
            await ctx.send(name)

        return cron("* * * * * *", send, name=name)

    runner = TriggerRunner([sender("a"), sender("b")], connection)
    _core._inject_panic("trigger")  # the first trigger task to run panics
    async with running(runner):
        await wait_for(lambda: records_mentioning(caplog, "panicked"))
        [record] = records_mentioning(caplog, "panicked")
        assert "panic injected" in record.getMessage()
        survivor = "b" if "'a'" in record.getMessage() or '"a"' in record.getMessage() else "a"
        before = connection.sent.count(survivor)
        await wait_for(
            lambda: connection.sent.count(survivor) > before + 2,
            timeout=10.0,
            what="the sibling keeps running",
        )
        assert connection.sent.count("a" if survivor == "b" else "b") == 0


async def test_a_panic_on_the_timer_thread_is_logged_and_timers_go_on(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = {"a": 0, "b": 0}

    def counter(key: str) -> PeriodicTrigger:
        async def tick(ctx: TriggerContext) -> None:
            ticks[key] += 1

        return every(0.005, tick, name=key)

    _core._inject_panic("timer")  # the next timer callback panics
    runner = TriggerRunner([counter("a"), counter("b")], connection)
    async with running(runner):
        await wait_for(lambda: records_mentioning(caplog, "timer callback panicked"))
        # One schedule lost its tick (and so its next one); the other goes on,
        # and a runner started afterwards runs normally: the thread survived.
        await wait_for(lambda: max(ticks.values()) >= 5)
    fresh = {"c": 0}

    async def tick_c(ctx: TriggerContext) -> None:
        fresh["c"] += 1

    second = TriggerRunner([every(0.005, tick_c)], connection)
    async with second:
        await wait_for(lambda: fresh["c"] >= 3, what="timers fire after the panic")


async def test_a_panic_in_a_loop_job_fails_that_call_only(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def tick(ctx: TriggerContext) -> None:
        nonlocal calls
        calls += 1

    runner = TriggerRunner([every(0.005, tick, name="steady")], connection)
    async with running(runner):
        await wait_for(lambda: calls >= 1)
        _core._inject_panic("loop_job")
        await wait_for(lambda: records_mentioning(caplog, "internal error"))
        [record] = records_mentioning(caplog, "internal error")
        assert "'steady'" in record.getMessage()
        assert "panic injected" in record.getMessage()
        seen = calls
        await wait_for(lambda: calls >= seen + 3, what="the schedule survives the failed call")


async def test_a_panic_in_stop_is_a_runtime_error_and_stop_can_be_retried(
    connection: FakeConnection,
) -> None:
    async def polite(ctx: TriggerContext) -> None:
        await anyio.sleep(3600)

    runner = TriggerRunner([polite], connection)
    await runner.start()
    _core._inject_panic("stop")
    with pytest.raises(RuntimeError, match="internal error in agent-triggers"):
        await bounded(runner.stop(), 10)
    # The coroutine trigger was cancelled on the host before the stop task
    # failed; the runner still counts as started, not half-forgotten.
    with pytest.raises(AlreadyStartedError):
        await runner.start()
    await bounded(runner.stop(), 10)
    assert runner.is_running is False
    await runner.start()  # stopped for good: it starts again
    assert runner.is_running is True
    await bounded(runner.stop(), 10)


async def test_after_a_failed_stop_the_native_triggers_keep_running_until_stopped(
    connection: FakeConnection,
) -> None:
    ticks = 0

    async def tick(ctx: TriggerContext) -> None:
        nonlocal ticks
        ticks += 1

    async def polite(ctx: TriggerContext) -> None:
        await anyio.sleep(3600)

    runner = TriggerRunner([every(0.005, tick, name="tick"), polite], connection)
    await runner.start()
    await wait_for(lambda: ticks >= 1)
    _core._inject_panic("stop")
    with pytest.raises(RuntimeError, match="internal error in agent-triggers"):
        await bounded(runner.stop(), 10)
    # Still started, so still ticking: a runner that counts as started but
    # whose schedules went quiet would be neither running nor restartable.
    before = ticks
    await wait_for(lambda: ticks > before + 2, what="the schedule goes on after the failed stop")
    await bounded(runner.stop(), 10)
    assert runner.is_running is False
    after = ticks
    assert await stays_false(lambda: ticks > after, duration=0.05)
