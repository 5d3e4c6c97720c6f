"""docs/contract.md §4: `TriggerRunner.stop()` — what it cancels and waits for, and
under pressure: mid-flight callbacks, concurrent and interleaved calls, stops from
inside a trigger, and `stop(timeout=...)` for triggers that ignore cancellation, with
any timeout (property-based; the argument's own checks are in test_durations.py).

On every host (§7): a trigger sees the host's cancellation (`asyncio.CancelledError`,
`trio.Cancelled`). Cleanup that awaits is shielded (`anyio.CancelScope(shield=True)`):
trio's cancellation is level-triggered, so an unshielded await in a cancelled
trigger is cancelled again at once; asyncio's is delivered once, so there the
shield does not change what the tests see.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import anyio
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_triggers import AlreadyStartedError, Trigger, TriggerContext, TriggerRunner, after, every

from conftest import (
    MAX_SECONDS,
    RUNNING,
    Accepted,
    FakeConnection,
    Host,
    Rejected,
    Stubborn,
    agent_trigger_logs,
    backends,
    bounded,
    cancelled,
    error_records,
    expected_duration,
    messages_at,
    rejected,
    run_on,
    until_set,
    wait_for,
    wait_forever,
)


async def clean_up(seconds: float) -> None:
    """An async cleanup that takes `seconds`, in a cancelled trigger (shielded)."""
    with anyio.CancelScope(shield=True):
        await anyio.sleep(seconds)


def warning_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "agent_triggers" and record.levelno == logging.WARNING
    ]


class Ledger:
    """Counts calls that began and calls whose cleanup has run."""

    def __init__(self) -> None:
        self.began = 0
        self.cleaned = 0

    @property
    def in_flight(self) -> int:
        return self.began - self.cleaned

    def waiter(self, cleanup: float) -> Callable[[TriggerContext], Awaitable[None]]:
        """A callback that waits until cancelled, then spends `cleanup` s cleaning up."""

        async def wait_then_clean_up(ctx: TriggerContext) -> None:
            self.began += 1
            try:
                await anyio.sleep(3600)
            finally:
                await clean_up(cleanup)  # cleanup that itself awaits
                self.cleaned += 1

        return wait_then_clean_up


# --- stop(): cancels, waits for cleanup, restarts -------------------------------------


async def test_stop_cancels_and_waits_for_async_cleanup(connection: FakeConnection) -> None:
    events: list[str] = []

    async def sleeper(ctx: TriggerContext) -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        except cancelled():
            events.append("cancelled")
            await clean_up(0.05)  # an async cleanup that takes a while
            events.append("except done")
            raise
        finally:
            await clean_up(0.05)  # another, after the except block's
            events.append("finally done")

    runner = TriggerRunner([sleeper], connection)
    await runner.start()
    try:
        await wait_for(lambda: events == ["started"])
    finally:
        await runner.stop()
    assert events == ["started", "cancelled", "except done", "finally done"]


async def test_stop_waits_for_the_cleanup_of_every_trigger(connection: FakeConnection) -> None:
    cleaned: list[int] = []
    started: list[int] = []

    def make(i: int) -> Any:
        async def sleeper(ctx: TriggerContext) -> None:
            started.append(i)
            try:
                await anyio.sleep(3600)
            finally:
                await clean_up(0.01 * i)  # cleanups of different lengths
                cleaned.append(i)

        return sleeper

    runner = TriggerRunner([make(i) for i in range(5)], connection)
    await runner.start()
    try:
        await wait_for(lambda: len(started) == 5)
    finally:
        await runner.stop()
    assert sorted(cleaned) == [0, 1, 2, 3, 4]


async def test_stop_cancels_a_trigger_subclass(connection: FakeConnection) -> None:
    started: list[str] = []
    cleaned: list[str] = []

    class Sleeper(Trigger):
        name = "sleeper"

        async def run(self, ctx: TriggerContext) -> None:
            started.append(self.name)
            try:
                await anyio.sleep(3600)
            finally:
                await clean_up(0.02)  # an async cleanup that takes a while
                cleaned.append(self.name)

    runner = TriggerRunner([Sleeper()], connection)
    await runner.start()
    try:
        await wait_for(lambda: started)
    finally:
        await runner.stop()
    assert cleaned == ["sleeper"]


async def test_stop_cancels_a_trigger_awaiting_send_when_idle(
    busy_connection: FakeConnection,
) -> None:
    finished: list[str] = []
    started = anyio.Event()

    async def patient(ctx: TriggerContext) -> None:
        started.set()
        try:
            await ctx.send_when_idle("never sent")
        finally:
            finished.append("finally")

    runner = TriggerRunner([patient], busy_connection)
    await runner.start()
    await until_set(started)  # its next step awaits send_when_idle
    await runner.stop()
    assert finished == ["finally"]
    busy_connection.set_idle(True)
    await anyio.sleep(0.05)  # time for a stray send to show up (a negative)
    assert busy_connection.sent == []


async def test_stop_returns_normally_even_if_a_trigger_swallows_cancellation(
    connection: FakeConnection,
) -> None:
    started = anyio.Event()

    async def stubborn(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        except cancelled():
            return

    runner = TriggerRunner([stubborn], connection)
    await runner.start()
    await until_set(started)
    await bounded(runner.stop(), timeout=5.0)
    assert runner.is_running is False


async def test_stop_before_start_is_a_no_op(connection: FakeConnection) -> None:
    runner = TriggerRunner([wait_forever], connection)
    await runner.stop()
    assert runner.is_running is False
    await runner.start()
    try:
        assert runner.is_running is True
    finally:
        await runner.stop()


async def test_stop_is_idempotent(connection: FakeConnection) -> None:
    runner = TriggerRunner([wait_forever], connection)
    await runner.start()
    await runner.stop()
    await runner.stop()
    await runner.stop()
    assert runner.is_running is False


async def test_concurrent_stops_both_return(connection: FakeConnection) -> None:
    runner = TriggerRunner([wait_forever], connection)
    await runner.start()
    with anyio.fail_after(5.0):
        async with anyio.create_task_group() as group:
            group.start_soon(runner.stop)
            group.start_soon(runner.stop)
    assert runner.is_running is False


async def test_runner_can_be_started_again_after_stop(connection: FakeConnection) -> None:
    runs: list[int] = []

    async def counted(ctx: TriggerContext) -> None:
        runs.append(1)
        await ctx.send(f"run {len(runs)}")
        await anyio.sleep(3600)

    runner = TriggerRunner([counted], connection)
    await runner.start()
    try:
        await wait_for(lambda: connection.sent == ["run 1"])
    finally:
        await runner.stop()
    await runner.start()
    try:
        await wait_for(lambda: connection.sent == ["run 1", "run 2"])
        assert runner.is_running is True
    finally:
        await runner.stop()
    assert runner.is_running is False


async def test_restart_after_triggers_returned(connection: FakeConnection) -> None:
    async def once(ctx: TriggerContext) -> None:
        await ctx.send("once")

    runner = TriggerRunner([once], connection)
    await runner.start()
    try:
        await wait_for(lambda: connection.sent == ["once"])
    finally:
        await runner.stop()
    await runner.start()
    try:
        await wait_for(lambda: connection.sent == ["once", "once"])
    finally:
        await runner.stop()


async def test_stop_does_not_block_the_loop(connection: FakeConnection) -> None:
    """While stop() waits for a slow async cleanup, other tasks keep running."""
    ticks: list[int] = []
    started = anyio.Event()

    async def slow_cleanup(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            await clean_up(0.2)  # a slow async cleanup, the point of the test

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await anyio.sleep(0.01)  # the pace of its ticks

    runner = TriggerRunner([slow_cleanup], connection)
    await runner.start()
    # Started: a trigger cancelled before its first step has no cleanup to wait for.
    await bounded(started.wait(), 5)
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        before = len(ticks)
        await runner.stop()
        assert len(ticks) >= before + 3
        group.cancel_scope.cancel()
    assert runner.is_running is False


async def test_a_trigger_may_stop_its_own_runner_which_can_then_restart(
    connection: FakeConnection,
) -> None:
    holder: list[TriggerRunner] = []

    async def stopper(ctx: TriggerContext) -> None:
        await holder[0].stop()

    runner = TriggerRunner([stopper, wait_forever], connection)
    holder.append(runner)
    await runner.start()
    await wait_for(lambda: not runner.is_running)
    await runner.start()  # the self-stop completed: the runner is stopped, not stuck started
    await runner.stop()


async def test_an_error_raised_while_being_cancelled_is_logged(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    started = anyio.Event()

    async def broken_cleanup(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            raise RuntimeError("cleanup failed")

    runner = TriggerRunner([broken_cleanup], connection)
    await runner.start()
    await until_set(started)
    await runner.stop()
    records = [r for r in caplog.records if r.name == "agent_triggers"]
    assert any(
        "broken_cleanup" in r.getMessage() and "cleanup failed" in r.getMessage() for r in records
    )


# --- mid-flight, concurrent, interleaved ----------------------------------------------


async def test_stop_waits_for_every_callback_in_flight(connection: FakeConnection) -> None:
    ledger = Ledger()

    slow_tick = ledger.waiter(cleanup=0.02)

    async def sender(ctx: TriggerContext) -> None:
        while True:
            await ctx.send("tick")
            await anyio.sleep(0.001)  # the pace of its sends

    runner = TriggerRunner([every(0.005, slow_tick), sender], connection)
    await runner.start()
    await wait_for(lambda: ledger.began >= 1 and len(connection.sent) >= 5)
    await bounded(runner.stop(), timeout=10)
    assert ledger.began >= 1
    assert ledger.in_flight == 0, "stop() returned before a callback's cleanup ran"
    sent = len(connection.sent)
    await anyio.sleep(0.05)  # time for a stray send to show up (a negative: no event to await)
    assert len(connection.sent) == sent, "a trigger kept sending after stop()"
    assert ledger.in_flight == 0


async def test_stop_waits_for_a_one_shot_callback_in_flight(connection: FakeConnection) -> None:
    ledger = Ledger()

    once = ledger.waiter(cleanup=0.02)

    runner = TriggerRunner([after(0.001, once)], connection)
    await runner.start()
    await wait_for(lambda: ledger.began == 1)
    await bounded(runner.stop(), timeout=10)
    assert (ledger.began, ledger.cleaned) == (1, 1)


async def test_concurrent_stops_each_wait_for_cleanup(connection: FakeConnection) -> None:
    ledger = Ledger()

    slow_cleanup = ledger.waiter(cleanup=0.05)

    runner = TriggerRunner([slow_cleanup, slow_cleanup], connection)
    await runner.start()
    await wait_for(lambda: ledger.began == 2)

    seen: list[int] = []

    async def stop_and_look() -> None:
        await runner.stop()
        seen.append(ledger.cleaned)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(stop_and_look)
    assert seen == [2] * 5, "a concurrent stop() returned before the cleanup ran"
    assert runner.is_running is False


async def test_start_and_stop_interleaved_from_many_tasks(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger()

    async def worker(ctx: TriggerContext) -> None:
        ledger.began += 1
        try:
            while True:
                await ctx.send("working")
                await anyio.sleep(0.001)  # the pace of its sends
        finally:
            ledger.cleaned += 1

    async def tick(ctx: TriggerContext) -> None:
        ledger.began += 1
        ledger.cleaned += 1

    runner = TriggerRunner([worker, every(0.002, tick)], connection)
    rng = random.Random(4)
    refused = 0

    async def churn() -> None:
        nonlocal refused
        for _ in range(25):
            if rng.random() < 0.5:
                try:
                    await runner.start()
                except AlreadyStartedError:
                    refused += 1
            else:
                await runner.stop()
            await anyio.sleep(rng.random() * 0.003)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(churn)
    await bounded(runner.stop(), timeout=10)
    assert runner.is_running is False
    assert ledger.began > 0
    assert ledger.in_flight == 0, "a trigger was left running after the final stop()"
    assert refused > 0, "the churn never raced two starts (the test lost its point)"
    assert error_records(caplog) == []
    # Still usable afterwards.
    await runner.start()
    await wait_for(lambda: ledger.in_flight >= 1)
    await runner.stop()
    assert ledger.in_flight == 0


async def test_stop_from_inside_an_every_callback(connection: FakeConnection) -> None:
    holder: list[TriggerRunner] = []
    calls = 0

    async def stop_myself(ctx: TriggerContext) -> None:
        nonlocal calls
        calls += 1
        await holder[0].stop()

    runner = TriggerRunner([every(0.005, stop_myself)], connection)
    holder.append(runner)
    await runner.start()
    await wait_for(lambda: not runner.is_running, what="the runner stopped by its own callback")
    seen = calls
    await anyio.sleep(0.05)  # several intervals for a stray call to show up (a negative)
    assert calls == seen, "the schedule kept firing after stopping itself"
    await runner.start()  # stopped, not stuck started
    await wait_for(lambda: calls > seen)
    await wait_for(lambda: not runner.is_running)


async def test_stop_from_inside_a_trigger_while_another_stop_waits(
    connection: FakeConnection,
) -> None:
    holder: list[TriggerRunner] = []
    go = anyio.Event()
    started = anyio.Event()
    cleaned = anyio.Event()

    async def stop_myself(ctx: TriggerContext) -> None:
        await go.wait()
        await holder[0].stop()

    async def slow(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            await clean_up(0.03)  # an async cleanup that takes a while
            cleaned.set()

    runner = TriggerRunner([stop_myself, slow], connection)
    holder.append(runner)
    await runner.start()
    await bounded(started.wait(), timeout=10)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(runner.stop)  # the outer stop, waiting as the trigger stops
            go.set()
    assert cleaned.is_set()
    assert runner.is_running is False


# --- stop(timeout=...) ----------------------------------------------------------------


async def test_stop_with_timeout_abandons_a_trigger_that_ignores_cancellation(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = Stubborn()
    runner = TriggerRunner([stubborn], connection)
    await runner.start()
    await wait_for(lambda: stubborn.calls == 1)
    began = anyio.current_time()
    with caplog.at_level(logging.WARNING, logger="agent_triggers"):
        await bounded(runner.stop(timeout=0.2), timeout=10)
    assert anyio.current_time() - began >= 0.15, "stop() gave up before its timeout"
    warnings = warning_records(caplog)
    assert len(warnings) == 1
    assert "'Stubborn'" in warnings[0].getMessage() or "Stubborn" in warnings[0].getMessage()
    assert "timeout" in warnings[0].getMessage()
    assert stubborn.cancellations == 1, "the trigger was cancelled more (or less) than once"
    assert not stubborn.finished
    # Abandoned: the runner counts as stopped and starts again.
    assert runner.is_running is False
    assert "stopped" in repr(runner)
    stubborn.release()
    await wait_for(lambda: stubborn.finished, what="the abandoned trigger ended on its own")
    assert error_records(caplog) == []


async def test_stop_with_timeout_names_the_triggers_left_running_in_list_order(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    # The coroutine trigger's call is made by start(), the schedule's later:
    # the warning still follows the trigger list.
    stuck_tick = Stubborn()
    stuck_coroutine = Stubborn()

    async def stubborn_tick(ctx: TriggerContext) -> None:
        await stuck_tick(ctx)

    runner = TriggerRunner(
        [every(0.005, stubborn_tick, name="stuck_schedule"), stuck_coroutine], connection
    )
    await runner.start()
    try:
        await wait_for(lambda: stuck_tick.calls == 1 and stuck_coroutine.calls == 1)
        with caplog.at_level(logging.WARNING, logger="agent_triggers"):
            await bounded(runner.stop(timeout=0.2), timeout=10)
        [warning] = warning_records(caplog)
        message = warning.getMessage()
        assert "stuck_schedule" in message
        assert "Stubborn" in message
        assert message.index("stuck_schedule") < message.index("Stubborn"), message
    finally:
        # Even on failure: abandoned, they would outlive the test's loop.
        stuck_tick.release()
        stuck_coroutine.release()
    await wait_for(lambda: stuck_tick.finished and stuck_coroutine.finished)


async def test_stop_with_timeout_names_only_the_triggers_left_running(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = Stubborn()

    async def polite(ctx: TriggerContext) -> None:
        await anyio.sleep(3600)

    async def stubborn_tick(ctx: TriggerContext) -> None:
        await stubborn(ctx)

    runner = TriggerRunner([polite, every(0.005, stubborn_tick, name="stuck_schedule")], connection)
    await runner.start()
    await wait_for(lambda: stubborn.calls == 1)  # the schedule's first call is under way
    with caplog.at_level(logging.WARNING, logger="agent_triggers"):
        await bounded(runner.stop(timeout=timedelta(milliseconds=200)), timeout=10)
    [warning] = warning_records(caplog)
    message = warning.getMessage()
    assert "stuck_schedule" in message
    assert "polite" not in message
    stubborn.release()
    await wait_for(lambda: stubborn.finished)


async def test_runner_abandoned_by_a_timeout_restarts_while_the_old_trigger_runs(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = Stubborn()
    runner = TriggerRunner([stubborn], connection)
    await runner.start()
    await wait_for(lambda: stubborn.calls == 1)
    with caplog.at_level(logging.WARNING, logger="agent_triggers"):
        await runner.stop(timeout=0.05)
    await runner.start()  # no AlreadyStartedError: the abandoned run is over for the runner
    assert runner.is_running is True
    stubborn.release()  # ends the old and the new call
    await wait_for(lambda: stubborn.finished)
    await bounded(runner.stop(), timeout=10)
    assert runner.is_running is False


async def test_stop_with_timeout_is_silent_when_cleanup_finishes_in_time(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger()

    polite = ledger.waiter(cleanup=0.01)

    runner = TriggerRunner([polite, polite], connection)
    await runner.start()
    await wait_for(lambda: ledger.began == 2)
    with caplog.at_level(logging.WARNING, logger="agent_triggers"):
        await bounded(runner.stop(timeout=30), timeout=10)
    assert ledger.cleaned == 2
    assert warning_records(caplog) == []


async def test_stop_with_zero_timeout_returns_without_waiting(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = Stubborn()
    runner = TriggerRunner([stubborn], connection)
    await runner.start()
    await wait_for(lambda: stubborn.calls == 1)
    with caplog.at_level(logging.WARNING, logger="agent_triggers"):
        await bounded(runner.stop(timeout=0), timeout=10)
    assert runner.is_running is False
    assert len(warning_records(caplog)) == 1
    await wait_for(lambda: stubborn.cancellations == 1, what="the cancellation still reached it")
    stubborn.release()
    await wait_for(lambda: stubborn.finished)


async def test_stop_with_timeout_before_start_is_a_no_op(connection: FakeConnection) -> None:
    runner = TriggerRunner([Stubborn()], connection)
    await runner.stop(timeout=0.1)
    assert runner.is_running is False


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (-0.5, ValueError),
        (timedelta(seconds=-1), ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("5", TypeError),
        (True, TypeError),
        ([1], TypeError),
    ],
    ids=repr,
)
async def test_stop_rejects_a_bad_timeout_naming_it(
    connection: FakeConnection, timeout: Any, error: type[Exception]
) -> None:
    async def polite(ctx: TriggerContext) -> None:
        await anyio.sleep(3600)

    runner = TriggerRunner([polite], connection)
    async with runner:
        with pytest.raises(error, match="timeout"):
            await runner.stop(timeout=timeout)
        assert runner.is_running is True, "a rejected stop() must not stop anything"


# --- TriggerRunner.stop(timeout=...) at run time --------------------------------------


class Cooperative:
    """A trigger that ends when cancelled, after an async cleanup."""

    def __init__(self) -> None:
        self.started = False
        self.cleaned_up = False

    async def __call__(self, ctx: TriggerContext) -> None:
        self.started = True
        try:
            await anyio.sleep(3600)
        finally:
            await clean_up(0.01)  # an async cleanup that takes a while
            self.cleaned_up = True


short_timeouts = st.one_of(
    st.floats(min_value=0.0, max_value=0.05, allow_subnormal=True),
    st.fractions(min_value=0, max_value=Fraction(1, 20), max_denominator=10**12),
    st.decimals(min_value=0, max_value=Decimal("0.05"), allow_nan=False, allow_infinity=False),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(milliseconds=50)),
)


@pytest.mark.parametrize("host", backends())
@RUNNING
@given(timeout=short_timeouts)
@example(timeout=0)
@example(timeout=-0.0)
@example(timeout=5e-324)
@example(timeout=Decimal("-0"))
@example(timeout=dt.timedelta(0))
@example(timeout=Fraction(1, 3 * 10**9))
def test_a_short_stop_timeout_abandons_the_trigger_and_reports_the_exact_timeout(
    host: Host, timeout: Any
) -> None:
    expected = expected_duration(timeout, allow_zero=True)
    assert isinstance(expected, Accepted)

    async def main() -> None:
        stubborn = Stubborn()
        runner = TriggerRunner([stubborn], FakeConnection())
        with agent_trigger_logs() as records:
            await runner.start()
            await until_set(stubborn.started)
            try:
                await bounded(runner.stop(timeout=timeout), timeout=10)
                assert not runner.is_running
            finally:
                stubborn.release()
                await wait_for(lambda: stubborn.finished)
        (warning,) = messages_at(records, logging.WARNING)
        assert warning.startswith(f"stop(timeout={expected.seconds:g}) gave up waiting"), warning
        assert "'Stubborn'" in warning

    run_on(host, main)


@pytest.mark.parametrize(
    "timeout",
    [
        None,
        MAX_SECONDS,
        3_200_000_000,
        Decimal("3.2E+9"),
        Fraction(32 * 10**8),
        dt.timedelta(days=37000),
    ],
    ids=["None", "max-float", "max-int", "max-decimal", "max-fraction", "timedelta-37000d"],
)
async def test_a_long_stop_timeout_waits_for_the_cleanup(
    timeout: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cooperative = Cooperative()
    runner = TriggerRunner([cooperative], FakeConnection())
    await runner.start()
    await wait_for(lambda: cooperative.started)
    await bounded(runner.stop(timeout=timeout), timeout=10)
    assert cooperative.cleaned_up
    assert not runner.is_running
    assert [r for r in caplog.records if r.name == "agent_triggers"] == []


@pytest.mark.parametrize(
    "timeout",
    [math.nan, -1, -math.inf, math.inf, 1e300, True, "1", Decimal("NaN"), dt.timedelta(-1)],
    ids=["nan", "-1", "-inf", "inf", "1e300", "True", "str", "decimal-nan", "timedelta-neg"],
)
async def test_a_rejected_stop_timeout_leaves_the_runner_running(timeout: Any) -> None:
    expected = expected_duration(timeout, allow_zero=True)
    assert isinstance(expected, Rejected)
    cooperative = Cooperative()
    runner = TriggerRunner([cooperative], FakeConnection())
    await runner.start()
    try:
        await wait_for(lambda: cooperative.started)
        stopping = runner.stop(timeout=timeout)
        with rejected(expected.error, "timeout", expected.reason):
            await stopping
        assert runner.is_running
        assert not cooperative.cleaned_up
    finally:
        await bounded(runner.stop(), timeout=10)
    assert cooperative.cleaned_up
