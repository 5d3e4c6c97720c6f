"""docs/contract.md §8: `runner.stats()` and `TriggerStats` — fields, kinds, states,
counts, skipped ticks, lateness, the call instants — and the failure policy
`max_consecutive_failures=` (its arguments on every native factory, the pause and
WARNING it brings, and what resets it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from agent_triggers import (
    Trigger,
    TriggerContext,
    TriggerRunner,
    TriggerStats,
    after,
    at,
    cron,
    every,
    on_file_change,
    trigger,
)
from agent_triggers._core import NativeTrigger

from conftest import (
    WATCHED,
    FakeConnection,
    error_records,
    running,
    sleeper,
    stays_false,
    until_set,
    wait_for,
)

UTC = dt.timezone.utc
FIELDS = {
    "name",
    "kind",
    "state",
    "calls",
    "failures",
    "consecutive_failures",
    "skipped",
    "last_call_at",
    "next_call_at",
    "lateness_p50",
    "lateness_p99",
    "lateness_max",
    "last_error",
}


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


async def nothing(ctx: object, *changes: object) -> None:
    pass


class Counted:
    """A native callback that counts its calls and raises when `fails(n)` says so
    for call number n (from 1)."""

    def __init__(self, fails: Callable[[int], bool] = lambda n: False) -> None:
        self.fails = fails
        self.calls = 0
        self.failed = 0
        self.in_a_row = 0

    async def __call__(self, ctx: object, *changes: object) -> None:
        self.calls += 1
        if self.fails(self.calls):
            self.failed += 1
            self.in_a_row += 1
            raise ValueError(f"boom {self.calls}")
        self.in_a_row = 0

    def seen_in(self, stats: TriggerStats) -> bool:
        """Whether `stats` has caught up with the calls made so far and how each
        ended (the outcome of a call may reach the stats a little after it)."""
        return (stats.calls, stats.failures, stats.consecutive_failures) == (
            self.calls,
            self.failed,
            self.in_a_row,
        )


class Gate:
    """A native callback whose first call blocks until `release()`."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.released = anyio.Event()
        self.calls = 0
        self.finished = 0

    async def __call__(self, ctx: object) -> None:
        self.calls += 1
        try:
            if self.calls == 1:
                self.entered.set()
                await self.released.wait()
        finally:
            self.finished += 1

    def release(self) -> None:
        self.released.set()


class ClassBased(Trigger):
    name = "class-based"

    async def run(self, ctx: TriggerContext) -> None:
        await anyio.sleep(3600)


def stats_of(runner: TriggerRunner, name: str) -> TriggerStats:
    (stats,) = [stats for stats in runner.stats() if stats.name == name]
    return stats


async def settled(runner: TriggerRunner, name: str, counted: Counted) -> TriggerStats:
    """`name`'s stats once they show every call `counted` saw and how it ended."""
    try:
        await wait_for(lambda: counted.seen_in(stats_of(runner, name)))
    except pytest.fail.Exception:
        pytest.fail(
            f"the stats never showed calls, failures, consecutive_failures = "
            f"{(counted.calls, counted.failed, counted.in_a_row)}: {stats_of(runner, name)}"
        )
    return stats_of(runner, name)


def assert_aware_utc(when: dt.datetime | None) -> dt.datetime:
    assert isinstance(when, dt.datetime), when
    assert when.tzinfo is not None, f"naive: {when}"
    assert when.utcoffset() == dt.timedelta(0), f"not UTC: {when}"
    return when


def warning_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "agent_triggers" and record.levelno == logging.WARNING
    ]


# --- TriggerStats itself ------------------------------------------------------------------


def test_trigger_stats_is_a_frozen_dataclass_with_the_contracts_fields(
    connection: FakeConnection,
) -> None:
    assert dataclasses.is_dataclass(TriggerStats)
    assert {field.name for field in dataclasses.fields(TriggerStats)} == FIELDS
    (stats,) = TriggerRunner([every(1, nothing, name="x")], connection).stats()
    assert type(stats) is TriggerStats
    hostile: Any = stats
    with pytest.raises(dataclasses.FrozenInstanceError):
        hostile.calls = 99
    with pytest.raises(dataclasses.FrozenInstanceError):
        hostile.name = "y"
    assert stats.calls == 0
    assert stats.name == "x"


def test_trigger_stats_is_exported_by_the_package() -> None:
    import agent_triggers

    assert agent_triggers.TriggerStats is TriggerStats
    assert "TriggerStats" in agent_triggers.__all__


def test_stats_is_a_list_with_one_entry_per_trigger_in_order_before_start(
    connection: FakeConnection, tmp_path: Path
) -> None:
    async def coroutine_function(ctx: TriggerContext) -> None:
        pass

    @trigger(name="decorated")
    async def decorated(ctx: TriggerContext) -> None:
        pass

    a_lambda: Callable[[TriggerContext], Awaitable[None]] = lambda ctx: nothing(ctx)  # noqa: E731

    later = dt.datetime(2999, 1, 1, tzinfo=UTC)
    triggers: list[Any] = [
        every(1, nothing, name="e"),
        cron("* * * * *", nothing, name="c"),
        after(1, nothing, name="a"),
        at(later, nothing, name="t"),
        on_file_change(tmp_path, nothing, name="f"),
        coroutine_function,
        ClassBased(),
        decorated,
        a_lambda,
    ]
    stats = TriggerRunner(triggers, connection).stats()
    assert type(stats) is list
    assert [s.name for s in stats][:8] == [
        "e",
        "c",
        "a",
        "t",
        "f",
        "coroutine_function",
        "class-based",
        "decorated",
    ]
    assert [s.kind for s in stats] == [
        "every",
        "cron",
        "after",
        "at",
        "on_file_change",
        "coroutine",
        "coroutine",
        "coroutine",
        "coroutine",
    ]
    for s in stats:
        assert s.state == "idle", s
        assert (s.calls, s.failures, s.consecutive_failures, s.skipped) == (0, 0, 0, 0), s
        assert s.last_call_at is None, s
        assert s.next_call_at is None, s
        assert (s.lateness_p50, s.lateness_p99, s.lateness_max) == (None, None, None), s
        assert s.last_error is None, s


def test_stats_of_an_empty_runner_is_an_empty_list(connection: FakeConnection) -> None:
    assert TriggerRunner([], connection).stats() == []


async def test_stats_is_a_snapshot_that_later_calls_do_not_change(
    connection: FakeConnection,
) -> None:
    counted = Counted()
    runner = TriggerRunner([every(0.02, counted, name="paced")], connection)
    async with running(runner):
        await wait_for(lambda: counted.calls >= 1 and stats_of(runner, "paced").calls >= 1)
        (snapshot,) = runner.stats()
        calls = snapshot.calls
        await wait_for(lambda: stats_of(runner, "paced").calls >= calls + 2)
        assert snapshot.calls == calls


async def test_stats_can_be_taken_from_inside_a_call(connection: FakeConnection) -> None:
    seen: list[list[TriggerStats]] = []
    runners: list[TriggerRunner] = []

    async def look(ctx: TriggerContext) -> None:
        seen.append(runners[0].stats())

    runner = TriggerRunner([every(0.02, look, name="looking")], connection)
    runners.append(runner)
    async with running(runner):
        await wait_for(lambda: len(seen) >= 2)
    assert all(len(stats) == 1 and stats[0].name == "looking" for stats in seen)
    assert seen[0][0].state == "running"


# --- kinds --------------------------------------------------------------------------------


async def test_kinds_while_running(connection: FakeConnection, tmp_path: Path) -> None:
    started = anyio.Event()
    triggers: list[Any] = [
        every(60, nothing, name="e"),
        cron("0 0 1 1 *", nothing, name="c"),
        after(3600, nothing, name="a"),
        at(utc_now() + dt.timedelta(hours=1), nothing, name="t"),
        on_file_change(tmp_path, nothing, name="f"),
        sleeper(started),
        ClassBased(),
    ]
    runner = TriggerRunner(triggers, connection)
    async with running(runner):
        await until_set(started)
        kinds = [s.kind for s in runner.stats()]
    assert kinds == ["every", "cron", "after", "at", "on_file_change", "coroutine", "coroutine"]


# --- states -------------------------------------------------------------------------------


async def test_a_native_trigger_is_running_during_a_call_and_idle_between_calls(
    connection: FakeConnection,
) -> None:
    gate = Gate()
    runner = TriggerRunner([every(0.02, gate, name="gated")], connection)
    assert stats_of(runner, "gated").state == "idle"
    async with running(runner):
        await until_set(gate.entered, what="a call to be under way")
        assert stats_of(runner, "gated").state == "running"
        gate.release()
        await wait_for(lambda: gate.finished >= 1)
        await wait_for(
            lambda: stats_of(runner, "gated").state == "idle", what="'idle' between calls"
        )


async def test_a_coroutine_trigger_is_running_then_finished_once_it_returned(
    connection: FakeConnection,
) -> None:
    release = anyio.Event()
    started = anyio.Event()

    async def short_lived(ctx: TriggerContext) -> None:
        started.set()
        await release.wait()

    runner = TriggerRunner([short_lived], connection)
    async with running(runner):
        await until_set(started)
        assert stats_of(runner, "short_lived").state == "running"
        release.set()
        await wait_for(lambda: stats_of(runner, "short_lived").state == "finished")


async def test_a_coroutine_trigger_that_raised_is_failed(connection: FakeConnection) -> None:
    async def broken(ctx: TriggerContext) -> None:
        raise ValueError("boom")

    runner = TriggerRunner([broken], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "broken").state == "failed")
        last_error = stats_of(runner, "broken").last_error
    assert last_error is not None
    assert "boom" in last_error


@pytest.mark.parametrize("kind", ["after", "at"])
async def test_a_one_shot_is_finished_once_it_made_its_call(
    connection: FakeConnection, kind: str
) -> None:
    counted = Counted()
    trig = (
        after(0, counted, name="once")
        if kind == "after"
        else at(utc_now() - dt.timedelta(seconds=1), counted, name="once")
    )
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "once").state == "finished")
        stats = stats_of(runner, "once")
    assert counted.calls == 1
    assert stats.calls == 1
    assert stats.kind == kind


async def test_a_paused_trigger_is_paused_even_while_a_call_finishes(
    connection: FakeConnection,
) -> None:
    gate = Gate()
    trig = every(0.02, gate, name="gated")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await until_set(gate.entered, what="a call to be under way")
        runner.pause(trig)
        assert stats_of(runner, "gated").state == "paused"
        gate.release()
        await wait_for(lambda: gate.finished == 1)
        assert stats_of(runner, "gated").state == "paused"
        runner.resume(trig)
        assert stats_of(runner, "gated").state != "paused"


# --- counts -------------------------------------------------------------------------------


async def test_calls_failures_and_last_error_count_the_calls(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    counted = Counted(fails=lambda n: n in (2, 3))
    trig = every(0.02, counted, name="counted")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: counted.calls >= 3)
        runner.pause(trig)
        stats = await settled(runner, "counted", counted)
        assert stats.failures == 2
        assert stats.consecutive_failures == (2 if counted.calls == 3 else 0)
        assert stats.last_error is not None
        assert "boom 3" in stats.last_error
        assert "ValueError" in stats.last_error
        runner.resume(trig)
        calls = counted.calls
        await wait_for(lambda: counted.calls >= calls + 2, what="calls after resume()")
        stats = await settled(runner, "counted", counted)
    assert stats.failures == 2
    assert stats.consecutive_failures == 0
    assert stats.last_error is not None
    assert "boom 3" in stats.last_error, "the last failure stays shown after successes"


async def test_last_error_is_the_type_and_the_message(connection: FakeConnection) -> None:
    async def fails(ctx: object) -> None:
        raise ValueError("boom")

    runner = TriggerRunner([after(0, fails, name="failing")], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "failing").failures == 1)
    last_error = stats_of(runner, "failing").last_error
    assert last_error is not None
    assert "ValueError" in last_error
    assert "boom" in last_error


async def test_counters_are_cumulative_across_stop_and_start(connection: FakeConnection) -> None:
    counted = Counted(fails=lambda n: n == 1)
    runner = TriggerRunner([every(0.02, counted, name="counted")], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "counted").calls >= 3)
    first = stats_of(runner, "counted")
    assert first.failures == 1
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "counted").calls >= first.calls + 3)
    second = stats_of(runner, "counted")
    assert second.failures == 1
    assert second.last_call_at is not None
    assert first.last_call_at is not None
    assert second.last_call_at > first.last_call_at


async def test_run_now_calls_are_counted_but_not_in_lateness(connection: FakeConnection) -> None:
    counted = Counted()
    trig = every(3600, counted, name="hourly")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await runner.run_now(trig)
        await runner.run_now(trig)
        stats = stats_of(runner, "hourly")
    assert counted.calls == 2
    assert stats.calls == 2
    assert (stats.lateness_p50, stats.lateness_p99, stats.lateness_max) == (None, None, None)
    assert_aware_utc(stats.last_call_at)


async def test_file_change_calls_are_counted_but_not_in_lateness(
    connection: FakeConnection, tmp_path: Path
) -> None:
    counted = Counted()
    runner = TriggerRunner([on_file_change(tmp_path, counted, name="watch")], connection)
    async with running(runner):
        (tmp_path / "note.txt").write_text("hello")
        await wait_for(lambda: stats_of(runner, "watch").calls >= 1)
        stats = stats_of(runner, "watch")
    assert (stats.lateness_p50, stats.lateness_p99, stats.lateness_max) == (None, None, None)
    assert stats.next_call_at is None
    assert_aware_utc(stats.last_call_at)


# --- skipped ------------------------------------------------------------------------------


async def test_ticks_due_while_paused_are_counted_as_skipped(connection: FakeConnection) -> None:
    counted = Counted()
    trig = every(0.02, counted, name="paced")
    runner = TriggerRunner([trig], connection)
    runner.pause(trig)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "paced").skipped >= 3, what="skipped ticks")
        stats = stats_of(runner, "paced")
    assert counted.calls == 0
    assert stats.calls == 0


async def test_ticks_missed_by_an_overrunning_call_are_counted_as_skipped(
    connection: FakeConnection,
) -> None:
    # The missed ticks may be counted during the overrun or once the call ended: the
    # count is checked after it.
    gate = Gate()
    runner = TriggerRunner([every(0.02, gate, name="overrun")], connection)
    async with running(runner):
        await until_set(gate.entered)
        await anyio.sleep(0.1)  # the call overruns five intervals, the point of the test
        gate.release()
        await wait_for(lambda: gate.calls >= 3, what="calls after the overrun")
        await wait_for(lambda: stats_of(runner, "overrun").skipped >= 3, what="skipped ticks")


# --- lateness -----------------------------------------------------------------------------


async def test_lateness_is_none_before_the_first_scheduled_call_then_floats(
    connection: FakeConnection,
) -> None:
    counted = Counted()
    runner = TriggerRunner([every(0.03, counted, name="paced")], connection)
    (before,) = runner.stats()
    assert (before.lateness_p50, before.lateness_p99, before.lateness_max) == (None, None, None)
    async with running(runner):
        (running_before,) = runner.stats()
        if running_before.calls == 0:
            assert running_before.lateness_p50 is None
            assert running_before.lateness_p99 is None
            assert running_before.lateness_max is None
        await wait_for(lambda: stats_of(runner, "paced").calls >= 5)
        stats = stats_of(runner, "paced")
    latenesses = [stats.lateness_p50, stats.lateness_p99, stats.lateness_max]
    assert all(type(value) is float for value in latenesses), latenesses
    p50, p99, worst = (value or 0.0 for value in latenesses)
    assert 0.0 <= p50 <= p99 <= worst, latenesses


@pytest.mark.parametrize("kind", ["after", "at", "cron"])
async def test_lateness_is_a_float_once_a_scheduled_call_of_any_kind_was_made(
    connection: FakeConnection, kind: str
) -> None:
    counted = Counted()
    triggers: dict[str, Callable[[], NativeTrigger]] = {
        "after": lambda: after(0.01, counted, name="x"),
        "at": lambda: at(utc_now() + dt.timedelta(seconds=0.05), counted, name="x"),
        "cron": lambda: cron("* * * * * *", counted, name="x"),
    }
    runner = TriggerRunner([triggers[kind]()], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "x").calls >= 1, timeout=10)
        stats = stats_of(runner, "x")
    assert type(stats.lateness_max) is float
    assert stats.lateness_max >= 0.0


# --- last_call_at, next_call_at -----------------------------------------------------------


async def test_last_call_at_is_an_aware_utc_instant_of_the_last_call(
    connection: FakeConnection,
) -> None:
    counted = Counted()
    trig = every(0.02, counted, name="paced")
    runner = TriggerRunner([trig], connection)
    started = utc_now()
    async with running(runner):
        await wait_for(lambda: counted.calls >= 2)
        runner.pause(trig)
        await settled(runner, "paced", counted)
        seen = utc_now()
        last = assert_aware_utc(stats_of(runner, "paced").last_call_at)
    assert started - dt.timedelta(seconds=0.01) <= last <= seen


async def test_next_call_at_of_an_every_is_the_next_due_tick_on_its_grid(
    connection: FakeConnection,
) -> None:
    dues: list[dt.datetime] = []
    interval = dt.timedelta(seconds=0.05)

    async def record(ctx: TriggerContext) -> None:
        assert ctx.scheduled_at is not None
        dues.append(ctx.scheduled_at)

    runner = TriggerRunner([every(interval, record, name="paced")], connection)
    assert stats_of(runner, "paced").next_call_at is None, "None before start"
    started = utc_now()
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "paced").next_call_at is not None)
        first_next = assert_aware_utc(stats_of(runner, "paced").next_call_at)
        assert started < first_next <= utc_now() + interval + dt.timedelta(seconds=0.01)
        await wait_for(lambda: len(dues) >= 2)
        now = utc_now()
        upcoming = assert_aware_utc(stats_of(runner, "paced").next_call_at)
    assert upcoming > dues[0]
    assert upcoming <= now + interval + dt.timedelta(seconds=0.01)
    steps = round((upcoming - dues[0]) / interval)
    assert abs(upcoming - dues[0] - steps * interval) <= dt.timedelta(milliseconds=0.5)
    assert stats_of(runner, "paced").next_call_at is None, "None once stopped"


async def test_next_call_at_is_none_while_paused_and_back_after_resume(
    connection: FakeConnection,
) -> None:
    trig = every(0.05, nothing, name="paced")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "paced").next_call_at is not None)
        runner.pause(trig)
        assert stats_of(runner, "paced").next_call_at is None
        runner.resume(trig)
        await wait_for(lambda: stats_of(runner, "paced").next_call_at is not None)
        assert_aware_utc(stats_of(runner, "paced").next_call_at)


async def test_next_call_at_of_a_cron_is_its_next_fire(connection: FakeConnection) -> None:
    runner = TriggerRunner([cron("0 0 1 1 *", nothing, tz="UTC", name="new-year")], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "new-year").next_call_at is not None)
        upcoming = assert_aware_utc(stats_of(runner, "new-year").next_call_at)
    assert upcoming == dt.datetime(utc_now().year + 1, 1, 1, tzinfo=UTC)


async def test_next_call_at_of_an_at_is_its_instant_until_it_fired(
    connection: FakeConnection,
) -> None:
    when = (utc_now() + dt.timedelta(seconds=0.3)).astimezone(dt.timezone(dt.timedelta(hours=5)))
    counted = Counted()
    runner = TriggerRunner([at(when, counted, name="soon")], connection)
    assert stats_of(runner, "soon").next_call_at is None, "None before start"
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "soon").next_call_at is not None)
        upcoming = stats_of(runner, "soon").next_call_at
        if counted.calls == 0:
            assert assert_aware_utc(upcoming) == when
        await wait_for(lambda: stats_of(runner, "soon").state == "finished")
        assert stats_of(runner, "soon").next_call_at is None, "None once it fired"


async def test_next_call_at_of_an_after_is_its_due_instant(connection: FakeConnection) -> None:
    runner = TriggerRunner([after(3600, nothing, name="later")], connection)
    started = utc_now()
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "later").next_call_at is not None)
        upcoming = assert_aware_utc(stats_of(runner, "later").next_call_at)
        returned = utc_now()
    hour = dt.timedelta(hours=1)
    assert started + hour - dt.timedelta(seconds=0.01) <= upcoming
    assert upcoming <= returned + hour + dt.timedelta(seconds=0.01)


async def test_next_call_at_is_none_for_a_file_watch_and_a_coroutine_trigger(
    connection: FakeConnection, tmp_path: Path
) -> None:
    started = anyio.Event()
    runner = TriggerRunner(
        [on_file_change(tmp_path, nothing, name="watch"), sleeper(started)], connection
    )
    async with running(runner):
        await until_set(started)
        assert await stays_false(
            lambda: any(s.next_call_at is not None for s in runner.stats()), duration=0.1
        )


# --- max_consecutive_failures: arguments --------------------------------------------------


def every_with(**options: Any) -> NativeTrigger:
    return every(1, nothing, **options)


def cron_with(**options: Any) -> NativeTrigger:
    return cron("* * * * *", nothing, **options)


def after_with(**options: Any) -> NativeTrigger:
    return after(1, nothing, **options)


def at_with(**options: Any) -> NativeTrigger:
    return at(dt.datetime(2999, 1, 1, tzinfo=UTC), nothing, **options)


def on_file_change_with(**options: Any) -> NativeTrigger:
    return on_file_change(WATCHED, nothing, **options)


FACTORIES: dict[str, Callable[..., NativeTrigger]] = {
    "every": every_with,
    "cron": cron_with,
    "after": after_with,
    "at": at_with,
    "on_file_change": on_file_change_with,
}


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_max_consecutive_failures_defaults_to_none(factory: Callable[..., Any]) -> None:
    assert factory().max_consecutive_failures is None
    assert factory(max_consecutive_failures=None).max_consecutive_failures is None


@pytest.mark.parametrize("value", [1, 3, 10**6])
@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_max_consecutive_failures_takes_a_positive_int(
    factory: Callable[..., Any], value: int
) -> None:
    limit = factory(max_consecutive_failures=value).max_consecutive_failures
    assert limit == value
    assert type(limit) is int


@pytest.mark.parametrize(
    "value",
    [True, False, 1.0, 2.5, "3", b"3", [3]],
    ids=["True", "False", "float-1.0", "float-2.5", "str", "bytes", "list"],
)
@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_max_consecutive_failures_of_another_type_is_a_type_error_naming_it(
    factory: Callable[..., Any], value: Any
) -> None:
    with pytest.raises(TypeError, match="max_consecutive_failures"):
        factory(max_consecutive_failures=value)


@pytest.mark.parametrize("value", [0, -1, -(10**6)])
@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_max_consecutive_failures_below_one_is_a_value_error_naming_it(
    factory: Callable[..., Any], value: int
) -> None:
    with pytest.raises(ValueError, match="max_consecutive_failures"):
        factory(max_consecutive_failures=value)


# --- max_consecutive_failures: the policy -------------------------------------------------


async def test_n_failing_calls_in_a_row_pause_the_trigger_with_one_warning(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_triggers")
    counted = Counted(fails=lambda n: True)
    trig = every(0.02, counted, name="flaky-poller", max_consecutive_failures=3)
    runner = TriggerRunner([trig, every(0.02, nothing, name="other")], connection)
    async with running(runner):
        await wait_for(
            lambda: stats_of(runner, "flaky-poller").state == "paused", what="the self-pause"
        )
        assert await stays_false(lambda: counted.calls > 3, duration=0.15)
        stats = stats_of(runner, "flaky-poller")
        assert stats_of(runner, "other").state != "paused"
    assert counted.calls == 3
    assert (stats.calls, stats.failures, stats.consecutive_failures) == (3, 3, 3)
    assert stats.next_call_at is None
    (warning,) = warning_records(caplog)
    message = warning.getMessage()
    assert "flaky-poller" in message
    assert re.search(r"\b3\b", message), message
    assert len(error_records(caplog)) == 3, "each failing call is logged as ever"


async def test_a_limit_of_one_pauses_after_the_first_failure(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_triggers")
    counted = Counted(fails=lambda n: True)
    trig = every(0.02, counted, name="fragile", max_consecutive_failures=1)
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "fragile").state == "paused")
        assert await stays_false(lambda: counted.calls > 1, duration=0.1)
    (warning,) = warning_records(caplog)
    assert "fragile" in warning.getMessage()
    assert re.search(r"\b1\b", warning.getMessage())


async def test_a_successful_call_resets_the_consecutive_failures(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail, fail, succeed, fail, fail, succeed...: never 3 in a row."""
    caplog.set_level(logging.WARNING, logger="agent_triggers")
    counted = Counted(fails=lambda n: n % 3 != 0)
    trig = every(0.02, counted, name="sometimes", max_consecutive_failures=3)
    runner = TriggerRunner([trig], connection)
    highest: list[int] = []

    def enough_calls() -> bool:
        stats = stats_of(runner, "sometimes")
        highest.append(stats.consecutive_failures)
        return stats.calls >= 9

    async with running(runner):
        await wait_for(enough_calls, what="nine calls")
        runner.pause(trig)
        stats = await settled(runner, "sometimes", counted)
    assert max(highest) <= 2
    assert stats.consecutive_failures == {0: 0, 1: 1, 2: 2}[counted.calls % 3]
    assert stats.failures == counted.calls - counted.calls // 3
    assert warning_records(caplog) == []


async def test_resume_resets_the_count_and_the_trigger_may_pause_itself_again(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_triggers")
    counted = Counted(fails=lambda n: True)
    trig = every(0.02, counted, name="relapsing", max_consecutive_failures=2)
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "relapsing").state == "paused")
        assert stats_of(runner, "relapsing").consecutive_failures == 2
        runner.resume(trig)
        resumed = stats_of(runner, "relapsing")
        assert resumed.consecutive_failures == 0
        assert resumed.state != "paused"
        assert resumed.failures == 2, "failures is cumulative; resume resets only the run"
        await wait_for(lambda: counted.calls >= 3, what="calls after resume()")
        await wait_for(lambda: stats_of(runner, "relapsing").state == "paused")
        stats = stats_of(runner, "relapsing")
    assert counted.calls == 4
    assert (stats.failures, stats.consecutive_failures) == (4, 2)
    assert len(warning_records(caplog)) == 2


async def test_resume_of_a_paused_trigger_resets_consecutive_failures_without_a_limit(
    connection: FakeConnection,
) -> None:
    counted = Counted(fails=lambda n: True)
    trig = every(0.02, counted, name="failing")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: stats_of(runner, "failing").consecutive_failures >= 2)
        runner.pause(trig)
        stats = await settled(runner, "failing", counted)
        assert stats.consecutive_failures == counted.calls
        runner.resume(trig)
        assert stats_of(runner, "failing").consecutive_failures == 0


async def test_without_a_limit_a_failing_trigger_is_never_paused(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_triggers")
    counted = Counted(fails=lambda n: True)
    runner = TriggerRunner([every(0.02, counted, name="failing")], connection)
    async with running(runner):
        await wait_for(lambda: counted.calls >= 6)
        assert stats_of(runner, "failing").state != "paused"
    assert warning_records(caplog) == []
