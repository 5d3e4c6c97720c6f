"""docs/contract.md §5: `every`, the native periodic trigger."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import math
import time
from collections.abc import AsyncGenerator, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import pytest
import trio

from agent_triggers import TriggerContext, TriggerDelivery, TriggerRunner, every

from conftest import FakeConnection, cancelled, error_records, on_trio, stays_false, wait_for


async def nothing(ctx: object) -> None:
    pass


@asynccontextmanager
async def run_alone(*schedules: Coroutine[Any, Any, None]) -> AsyncGenerator[list[str], None]:
    """Run each of `schedules` (what `trig(ctx)` returns) as a task of the host, as a
    minimal foreign runner would; on exit, cancel them and wait until each has ended.

    Yields how they have ended so far, one entry each: `"cancelled"` (it let the
    cancellation through) or `"returned"`.
    """
    ends: list[str] = []

    async def run(schedule: Coroutine[Any, Any, None]) -> None:
        try:
            await schedule
        except cancelled():
            ends.append("cancelled")
            raise
        ends.append("returned")

    async with anyio.create_task_group() as tasks:
        for schedule in schedules:
            tasks.start_soon(run, schedule)
        try:
            yield ends
        finally:
            tasks.cancel_scope.cancel()


def host() -> object:
    """What identifies the running host: asyncio's running loop, or the trio run's token."""
    if on_trio():
        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


# --- interval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [
        (300, 300.0),
        (1, 1.0),
        (0.25, 0.25),
        (timedelta(minutes=5), 300.0),
        (timedelta(milliseconds=1500), 1.5),
    ],
    ids=["int", "int-1", "float", "timedelta-minutes", "timedelta-ms"],
)
def test_interval_is_float_seconds(interval: Any, seconds: float) -> None:
    trig = every(interval, nothing)
    assert type(trig.interval) is float
    assert trig.interval == seconds


@pytest.mark.parametrize(
    "interval",
    [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, timedelta(0), timedelta(seconds=-1)],
    ids=["0", "0.0", "-1", "-0.5", "nan", "inf", "-inf", "timedelta-0", "timedelta-negative"],
)
def test_non_finite_or_non_positive_interval_is_a_value_error(interval: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        every(interval, nothing)


@pytest.mark.parametrize(
    "interval",
    ["5", None, True, False, [1], b"5", object()],
    ids=["str", "None", "True", "False", "list", "bytes", "object"],
)
def test_non_number_interval_is_a_type_error(interval: Any) -> None:
    with pytest.raises(TypeError):
        every(interval, nothing)


# --- callback ------------------------------------------------------------------------


@pytest.mark.parametrize("callback", [None, 3, "callback"], ids=["None", "int", "str"])
def test_non_callable_callback_is_a_type_error(callback: Any) -> None:
    with pytest.raises(TypeError):
        every(1, callback)


# --- name, delivery ------------------------------------------------------------------


def test_name_defaults_to_every_interval_s() -> None:
    trig = every(300, nothing)
    assert trig.name == "every_300s"
    assert trig.__name__ == "every_300s"


def test_default_name_uses_the_interval_as_given() -> None:
    assert every(0.5, nothing).name == "every_0.5s"
    assert every(2, nothing).name == "every_2s"


def test_custom_name() -> None:
    trig = every(10, nothing, name="inbox-poller")
    assert trig.name == "inbox-poller"
    assert trig.__name__ == "inbox-poller"


def test_delivery_defaults_to_wait_idle() -> None:
    assert every(10, nothing).delivery == TriggerDelivery.WAIT_IDLE


def test_custom_delivery() -> None:
    trig = every(10, nothing, delivery=TriggerDelivery.SEND_IMMEDIATELY)
    assert trig.delivery == TriggerDelivery.SEND_IMMEDIATELY


def test_name_and_delivery_are_keyword_only() -> None:
    positional: Any = every
    with pytest.raises(TypeError):
        positional(10, nothing, "positional-name")


# --- schedule --------------------------------------------------------------------------


async def test_first_call_comes_one_interval_after_start(connection: FakeConnection) -> None:
    call_times: list[float] = []

    async def record(ctx: object) -> None:
        call_times.append(anyio.current_time())

    runner = TriggerRunner([every(0.3, record)], connection)
    started_at = anyio.current_time()
    async with runner:
        assert await stays_false(lambda: call_times, duration=0.1)
        await wait_for(lambda: call_times)
    # Noise only ever delays a call: one must never come early.
    assert call_times[0] - started_at >= 0.25


async def test_callback_is_called_repeatedly(connection: FakeConnection) -> None:
    calls: list[object] = []

    async def record(ctx: object) -> None:
        calls.append(ctx)

    async with TriggerRunner([every(0.02, record)], connection):
        await wait_for(lambda: len(calls) >= 5)
    assert all(isinstance(ctx, TriggerContext) for ctx in calls)
    assert len({id(ctx) for ctx in calls}) == 1, "one trigger, one context"


async def test_many_triggers_due_at_one_instant_are_each_called_every_tick(
    connection: FakeConnection,
) -> None:
    """Calls due together are handed to the loop in chunks (the first starts
    before the last task is made): none is lost, none is called twice, and
    every trigger's call of one tick starts before any trigger's next."""
    calls: list[int] = []

    def recorder(index: int) -> Any:
        async def record(ctx: TriggerContext) -> None:
            calls.append(index)

        return record

    count = 300
    runner = TriggerRunner([every(0.2, recorder(i)) for i in range(count)], connection)
    async with runner:
        await wait_for(lambda: len(calls) >= 2 * count, timeout=10)
        stats = runner.stats()
    assert sorted(calls[:count]) == list(range(count)), "every first call before any second"
    assert sorted(calls[count : 2 * count]) == list(range(count))
    assert all(s.calls >= 2 and s.skipped == 0 for s in stats)


async def test_fixed_rate_the_callback_duration_does_not_add_drift(
    connection: FakeConnection,
) -> None:
    """Interval 0.05 s, callback 0.03 s, ~1 s window.

    Fixed-rate gives ~20 calls; sleeping the interval after each callback would
    give ~12; bursting would give more than 20.
    """
    call_times: list[float] = []

    async def slowish(ctx: object) -> None:
        call_times.append(anyio.current_time())
        await anyio.sleep(0.03)  # the callback's own duration, the point of the test

    runner = TriggerRunner([every(0.05, slowish)], connection)
    started_at = anyio.current_time()
    async with runner:
        await anyio.sleep(1.05)  # the window the calls are counted in: ticks come due
    in_window = [t for t in call_times if t - started_at <= 1.0]
    assert 15 <= len(in_window) <= 22, call_times


async def test_overrunning_callback_never_overlaps_itself(connection: FakeConnection) -> None:
    running = 0
    max_running = 0
    calls = 0

    async def overrun(ctx: object) -> None:
        nonlocal running, max_running, calls
        calls += 1
        running += 1
        max_running = max(max_running, running)
        try:
            await anyio.sleep(0.25)  # overruns five intervals, the point of the test
        finally:
            running -= 1

    async with TriggerRunner([every(0.05, overrun)], connection):
        await wait_for(lambda: calls >= 3)
    assert max_running == 1


async def test_missed_ticks_are_skipped_not_burst(connection: FakeConnection) -> None:
    """After one call overruns six intervals, the missed ticks are not replayed."""
    call_times: list[float] = []
    first_call_ended: list[float] = []

    async def overrun_once(ctx: object) -> None:
        call_times.append(anyio.current_time())
        if len(call_times) == 1:
            await anyio.sleep(0.6)  # overruns six intervals, the point of the test
            first_call_ended.append(anyio.current_time())

    async with TriggerRunner([every(0.1, overrun_once)], connection):
        await wait_for(lambda: first_call_ended)
        await anyio.sleep(0.15)  # time for a burst of missed ticks to show up (a negative)
        end = first_call_ended[0]
        after = [t for t in call_times[1:] if end <= t <= end + 0.15]
    assert len(after) <= 3, call_times


async def test_raising_callback_is_logged_and_the_schedule_goes_on(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    calls = 0

    async def flaky(ctx: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("flaky failure 31337")

    async with TriggerRunner([every(0.03, flaky, name="flaky-every")], connection):
        await wait_for(lambda: error_records(caplog))
        await wait_for(lambda: calls >= 3, what="calls after the failing one")
    (record,) = error_records(caplog)
    assert "flaky-every" in record.getMessage()
    assert "flaky failure 31337" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


async def test_callback_that_always_raises_keeps_being_called(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    calls = 0

    async def always_fails(ctx: object) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"failure {calls}")

    async with TriggerRunner([every(0.02, always_fails)], connection):
        await wait_for(lambda: calls >= 3)
        await wait_for(lambda: len(error_records(caplog)) >= 3)
    assert all("every_0.02s" in record.getMessage() for record in error_records(caplog))


async def test_callbacks_run_on_the_callers_host_with_its_contextvars(
    connection: FakeConnection,
) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[object, str]] = []

    async def record(ctx: object) -> None:
        seen.append((host(), var.get()))

    token = var.set("caller value")
    try:
        async with TriggerRunner([every(0.02, record)], connection):
            await wait_for(lambda: len(seen) >= 2)
    finally:
        var.reset(token)
    caller = host()
    assert all(where is caller and value == "caller value" for where, value in seen)


# --- the trigger object as an async callable ---------------------------------------


async def test_calling_the_trigger_returns_a_coroutine_that_runs_the_schedule() -> None:
    sentinel = object()
    received: list[object] = []

    async def record(ctx: object) -> None:
        received.append(ctx)

    coro = every(0.02, record)(sentinel)
    assert inspect.iscoroutine(coro)
    async with run_alone(coro) as ends:
        await wait_for(lambda: len(received) >= 3)
        assert ends == [], "the schedule runs until cancelled"
    assert ends == ["cancelled"]
    assert all(ctx is sentinel for ctx in received)
    count = len(received)
    await anyio.sleep(0.1)  # five intervals for a stray call to show up (a negative)
    assert len(received) == count, "the schedule stopped with its task"


async def test_calling_the_trigger_does_not_call_back_at_once() -> None:
    calls: list[object] = []

    async def record(ctx: object) -> None:
        calls.append(ctx)

    coro = every(0.3, record)("ctx")
    assert inspect.iscoroutine(coro)
    async with run_alone(coro) as ends:
        assert await stays_false(lambda: calls, duration=0.1)
    assert ends == ["cancelled"]


async def test_cancelling_the_task_reaches_a_callback_mid_flight() -> None:
    events: list[str] = []

    async def long_callback(ctx: object) -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        except cancelled():
            events.append("cancelled")
            raise
        finally:
            # An async cleanup that takes a while (shielded: on trio every await
            # in a cancelled scope is cancelled again).
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.02)
            events.append("finally")

    coro = every(0.02, long_callback)(object())
    assert inspect.iscoroutine(coro)
    async with run_alone(coro) as ends:
        await wait_for(lambda: events == ["started"])
    assert ends == ["cancelled"]
    await wait_for(lambda: events == ["started", "cancelled", "finally"])


async def test_the_same_trigger_object_can_run_twice_concurrently() -> None:
    """`ctx` is handed to the callback as is, so two runs stay apart."""
    received: list[str] = []

    async def record(ctx: str) -> None:
        received.append(ctx)

    trig = every(0.02, record)
    first, second = trig("first"), trig("second")
    assert inspect.iscoroutine(first)
    assert inspect.iscoroutine(second)
    async with run_alone(first, second) as ends:
        await wait_for(lambda: {"first", "second"} <= set(received))
    assert ends == ["cancelled", "cancelled"]


class ForeignContext:
    """The context some other runner (Antigravity's, say) would hand a trigger."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, content: str) -> None:
        self.sent.append(content)


async def test_runs_under_a_foreign_runner_with_its_own_context_type() -> None:
    async def report(ctx: ForeignContext) -> None:
        await ctx.send("via a foreign context")

    triggers = [every(0.02, report, name="portable")]
    contexts = [ForeignContext() for _ in triggers]
    # What a minimal third-party runner does: one task per trigger(ctx).
    schedules = [trig(ctx) for trig, ctx in zip(triggers, contexts)]
    assert all(inspect.iscoroutine(schedule) for schedule in schedules)
    async with run_alone(*schedules):
        await wait_for(lambda: len(contexts[0].sent) >= 2)
    assert set(contexts[0].sent) == {"via a foreign context"}


# --- under a runner, with a real connection ---------------------------------------------


async def test_under_a_runner_the_callback_sends_through_the_context(
    connection: FakeConnection,
) -> None:
    async def report(ctx: TriggerContext) -> None:
        await ctx.send("sent")
        await ctx.send_when_idle("sent when idle")
        await ctx.deliver("delivered")

    async with TriggerRunner([every(0.03, report, name="reporter")], connection):
        await wait_for(lambda: len(connection.sent) >= 3)
    assert connection.sent[:3] == ["sent", "sent when idle", "delivered"]


async def test_under_a_runner_deliver_follows_send_immediately(
    busy_connection: FakeConnection,
) -> None:
    async def report(ctx: TriggerContext) -> None:
        await ctx.deliver("urgent")

    trig = every(0.03, report, delivery=TriggerDelivery.SEND_IMMEDIATELY)
    async with TriggerRunner([trig], busy_connection):
        await wait_for(lambda: "urgent" in busy_connection.sent)
    assert busy_connection.is_idle is False


async def test_under_a_runner_deliver_follows_wait_idle(busy_connection: FakeConnection) -> None:
    calls = 0

    async def report(ctx: TriggerContext) -> None:
        nonlocal calls
        calls += 1
        await ctx.deliver("polite")

    async with TriggerRunner([every(0.03, report)], busy_connection):
        await wait_for(lambda: calls >= 1)
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await wait_for(lambda: "polite" in busy_connection.sent)


async def test_under_a_runner_send_when_idle_waits_while_send_does_not(
    busy_connection: FakeConnection,
) -> None:
    async def report(ctx: TriggerContext) -> None:
        await ctx.send("now")
        await ctx.send_when_idle("later")

    async with TriggerRunner([every(0.5, report)], busy_connection):
        await wait_for(lambda: busy_connection.sent == ["now"])
        assert await stays_false(lambda: "later" in busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await wait_for(lambda: "later" in busy_connection.sent)


async def test_runner_stop_waits_for_a_callback_mid_flight(connection: FakeConnection) -> None:
    events: list[str] = []

    async def long_callback(ctx: TriggerContext) -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        finally:
            # An async cleanup that takes a while (shielded: on trio every await
            # in a cancelled scope is cancelled again).
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
            events.append("finally")

    runner = TriggerRunner([every(0.02, long_callback)], connection)
    await runner.start()
    try:
        await wait_for(lambda: events == ["started"])
    finally:
        await runner.stop()
    assert events == ["started", "finally"]
    assert runner.is_running is False


async def test_runner_is_running_while_an_every_trigger_is_scheduled(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([every(60, nothing)], connection)
    async with runner:
        await anyio.sleep(0.05)  # time for a wrong False to show up (a negative)
        assert runner.is_running is True
    assert runner.is_running is False


async def test_a_host_blocked_past_deadlines_gives_one_late_call_not_a_burst(
    connection: FakeConnection,
) -> None:
    """The skip rule counts from when the late call really starts: after the
    overdue call, the next comes on the grid (here 10-20 ms later), never at once."""
    calls: list[float] = []

    async def record(ctx: object) -> None:
        calls.append(time.monotonic())

    async with TriggerRunner([every(0.05, record)], connection):
        await wait_for(lambda: len(calls) >= 2)
        seen = len(calls)
        await wait_for(lambda: len(calls) > seen)  # just after a call (10 ms polls)
        time.sleep(0.13)  # noqa: ASYNC251 - blocking the host across two deadlines is the point
        unblocked = time.monotonic()
        await anyio.sleep(0.3)  # lets the next ticks come due after the block
    after = [c for c in calls if c >= unblocked]
    gaps = [b - a for a, b in zip(after, after[1:])]
    assert len(after) >= 3, "the overdue call comes, then the schedule goes on"
    assert all(gap > 0.003 for gap in gaps), f"calls burst after the block: {gaps}"
