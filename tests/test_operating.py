"""docs/contract.md §8: operating a running runner — `add`, `remove`, `pause`,
`resume` and `run_now`, before `start()`, while running and after `stop()`; what
they accept; names shared by several triggers; and the races with `stop()` and with
the trigger's own calls (stats: test_stats.py; INTERRUPT: test_interrupt.py).

As everywhere in the suite, timing is only checked through bounded polls: a test
that needs a call to be under way has the callback say so (`Gate.entered`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

from agent_triggers import (
    FileChange,
    Trigger,
    TriggerContext,
    TriggerRunner,
    TriggerStats,
    after,
    every,
    on_file_change,
)
from agent_triggers._core import NativeTrigger

from conftest import (
    FakeConnection,
    Stubborn,
    bounded,
    cancelled,
    error_records,
    on_trio,
    running,
    sleeper,
    stays_false,
    until_set,
    wait_for,
)

UTC = dt.timezone.utc

#: How far a computed due instant may stray from the grid it belongs to (the
#: datetimes carry microseconds; the grid is computed in nanoseconds).
GRID_TOLERANCE = dt.timedelta(microseconds=500)


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class Calls:
    """A native callback that records each call: its `ctx.scheduled_at`, its host
    (the running event loop's token, asyncio's or trio's), its context."""

    def __init__(self) -> None:
        self.due: list[dt.datetime | None] = []
        self.hosts: list[anyio.lowlevel.EventLoopToken] = []
        self.contexts: list[object] = []

    async def __call__(self, ctx: TriggerContext, *changes: object) -> None:
        self.due.append(ctx.scheduled_at)
        self.hosts.append(anyio.lowlevel.current_token())
        self.contexts.append(ctx)

    @property
    def count(self) -> int:
        return len(self.due)


class Gate:
    """A native callback whose calls block until `release()` (when `blocks` says
    so): it counts calls, how many run at once, and how each ended.

    Make it inside the running host (anyio's Event is made for one).
    """

    def __init__(self, blocks: Callable[[TriggerContext], bool] | None = None) -> None:
        self.blocks: Callable[[TriggerContext], bool] = blocks or always
        self.entered = anyio.Event()
        self.released = anyio.Event()
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.finished = 0
        self.cancelled = 0
        self.due: list[dt.datetime | None] = []

    async def __call__(self, ctx: TriggerContext) -> None:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.due.append(ctx.scheduled_at)
        try:
            if self.blocks(ctx):
                self.entered.set()
                await self.released.wait()
        except cancelled():
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
            self.finished += 1

    def release(self) -> None:
        self.released.set()


def always(ctx: TriggerContext) -> bool:
    return True


class SlowCleanup:
    """A coroutine trigger whose cleanup, once cancelled, waits for `release()`:
    what keeps `stop()` (or `remove()`) under way while a test acts.

    On trio the cleanup waits shielded: trio's cancellation is level-triggered
    (every checkpoint in the cancelled scope raises again). On asyncio it waits
    unshielded, as a trigger's cleanup usually does: the runner cancels it once,
    and a second cancellation would cut the cleanup short."""

    def __init__(self, name: str = "slow-cleanup") -> None:
        self.__name__ = name
        self.started = anyio.Event()
        self.cancelling = anyio.Event()
        self.released = anyio.Event()
        self.cleaned_up = False

    async def __call__(self, ctx: TriggerContext) -> None:
        self.started.set()
        try:
            await anyio.sleep(3600)
        except cancelled():
            self.cancelling.set()
            with anyio.CancelScope(shield=on_trio()):
                await self.released.wait()  # an async cleanup the test controls
            raise
        finally:
            self.cleaned_up = True

    def release(self) -> None:
        self.released.set()


class Named(Trigger):
    """A class-based (coroutine) trigger that sleeps until cancelled."""

    name = "shared"

    async def run(self, ctx: TriggerContext) -> None:
        await anyio.sleep(3600)


def two_named_shared(
    interval: float, first: Calls, second: Calls, other: Calls
) -> list[NativeTrigger]:
    """Two triggers named "shared" (an `every(interval)` calling `first`, an hourly
    `after` calling `second`) around one named "other" (an `every(interval)`)."""
    return [
        every(interval, first, name="shared"),
        every(interval, other, name="other"),
        after(3600, second, name="shared"),
    ]


def cleaning_up_slowly(
    started: anyio.Event, events: list[str]
) -> Callable[[TriggerContext], Awaitable[None]]:
    """A trigger (or callback) that sets `started`, sleeps until cancelled, and
    records `"cancelled"`, then `"finally"` after an async cleanup that takes a while
    (shielded on trio, where cancellation is level-triggered, as `SlowCleanup`'s)."""

    async def cleaning(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        except cancelled():
            events.append("cancelled")
            raise
        finally:
            with anyio.CancelScope(shield=on_trio()):
                await anyio.sleep(0.05)  # an async cleanup that takes a while
            events.append("finally")

    return cleaning


async def nothing(ctx: object) -> None:
    pass


def names(runner: TriggerRunner) -> list[str]:
    return [stats.name for stats in runner.stats()]


def stats_of(runner: TriggerRunner, name: str) -> TriggerStats:
    (stats,) = [stats for stats in runner.stats() if stats.name == name]
    return stats


def state_of(runner: TriggerRunner, name: str) -> str:
    return stats_of(runner, name).state


def on_grid(due: dt.datetime, origin: dt.datetime, interval: dt.timedelta) -> bool:
    """Whether `due` is `origin + k * interval` for a whole k (to `GRID_TOLERANCE`)."""
    steps = round((due - origin) / interval)
    return abs(due - origin - steps * interval) <= GRID_TOLERANCE


def scheduled(dues: list[dt.datetime | None]) -> list[dt.datetime]:
    """The due instants recorded, all of which must be datetimes (native calls)."""
    assert all(due is not None for due in dues), dues
    return [due for due in dues if due is not None]


async def in_another_thread(call: Callable[[], object]) -> None:
    """`call()` in a worker thread; awaited (bounded: abandoned after 10 s) on this host."""
    await bounded(anyio.to_thread.run_sync(call, abandon_on_cancel=True), 10)


def awaited_on_a_loop_of_its_own(make: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """A function that awaits `make()` on a new run of the test's host (asyncio or
    trio) in the thread that calls it: for `in_another_thread`."""
    backend = sniffio.current_async_library()

    def call() -> None:
        async def main() -> None:
            await make()

        anyio.run(main, backend=backend)

    return call


class Background:
    """An awaitable (one of the runner's calls) awaited in a task of a task group, on
    the test's host (`in_background`, `begun`): `done` once it has ended; `ended(...)`
    waits for that. What it raises goes to the group, as anything a task of it raises."""

    def __init__(self) -> None:
        self.done = False
        self.finished = anyio.Event()

    async def run(
        self,
        awaitable: Awaitable[None],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()  # the task runs on, to the first wait of `awaitable`
        try:
            await awaitable
        finally:
            self.done = True
            self.finished.set()


def in_background(group: anyio.abc.TaskGroup, awaitable: Awaitable[None]) -> Background:
    """`awaitable` awaited in a new task of `group`, which starts at the host's next turn."""
    task = Background()
    group.start_soon(task.run, awaitable)
    return task


async def begun(group: anyio.abc.TaskGroup, awaitable: Awaitable[None]) -> Background:
    """`awaitable` awaited in a new task of `group`; returns once it has taken its first
    step (a runner's call: has looked at its arguments and waits). `group.start()`
    returns at the caller's next turn; the new task has run on until it waits."""
    task = Background()
    await group.start(task.run, awaitable)
    return task


async def ended(*tasks: Background, timeout: float = 10) -> None:
    """Wait until each of `tasks` has ended; `TimeoutError` after `timeout` s in all."""
    with anyio.fail_after(timeout):
        for task in tasks:
            await task.finished.wait()


# --- add ----------------------------------------------------------------------------------


async def test_add_before_start_appends_the_trigger_which_starts_with_start(
    connection: FakeConnection,
) -> None:
    first, added = Calls(), Calls()
    runner = TriggerRunner([every(0.02, first, name="first")], connection)
    runner.add(every(0.02, added, name="added"))
    assert names(runner) == ["first", "added"]
    assert added.count == 0
    async with running(runner):
        await wait_for(lambda: added.count >= 2, what="the added trigger's calls")


async def test_add_while_running_starts_a_coroutine_trigger_at_once(
    connection: FakeConnection,
) -> None:
    started = anyio.Event()
    runner = TriggerRunner([], connection)
    async with running(runner):
        runner.add(sleeper(started))
        await until_set(started, what="the added coroutine trigger to run")
        assert runner.is_running
        assert names(runner) == ["sleeper"]


async def test_add_while_running_starts_a_native_trigger_at_once(
    connection: FakeConnection,
) -> None:
    added = Calls()
    runner = TriggerRunner([every(3600, nothing, name="idle")], connection)
    async with running(runner):
        runner.add(after(0, added, name="one-shot"))
        await wait_for(lambda: added.count == 1, what="the added one-shot's call")
        runner.add(every(0.02, added, name="periodic"))
        await wait_for(lambda: added.count >= 3, what="the added every's calls")
        host = anyio.lowlevel.current_token()
    assert all(isinstance(ctx, TriggerContext) for ctx in added.contexts)
    assert all(called_on == host for called_on in added.hosts), "called on the test's host"


async def test_an_every_added_while_running_counts_its_schedule_from_the_add(
    connection: FakeConnection,
) -> None:
    """Interval 0.5 s, added at least 0.2 s after start: a schedule counted from
    start would be due 0.5 s after start (0.3 s after the add or less), not 0.5 s
    after the add."""
    beat, added = Calls(), Calls()
    interval = dt.timedelta(seconds=0.5)
    runner = TriggerRunner([every(0.05, beat, name="beat")], connection)
    async with running(runner):
        await wait_for(lambda: beat.count >= 4, what="0.2 s of the runner's life")
        before = utc_now()
        runner.add(every(interval, added, name="added"))
        after_add = utc_now()
        await wait_for(lambda: added.count >= 1, what="the added trigger's first call")
    (first_due, *_) = scheduled(added.due)
    assert before + interval - dt.timedelta(seconds=0.01) <= first_due, (before, first_due)
    assert first_due <= after_add + interval + dt.timedelta(seconds=0.15), (after_add, first_due)


async def test_add_appends_last_in_stats_order(connection: FakeConnection) -> None:
    runner = TriggerRunner([every(60, nothing, name="a"), nothing], connection)
    runner.add(every(60, nothing, name="b"))
    assert names(runner) == ["a", "nothing", "b"]
    async with running(runner):
        runner.add(Named())
        assert names(runner) == ["a", "nothing", "b", "shared"]


async def test_add_after_stop_appends_the_trigger_for_the_next_start(
    connection: FakeConnection,
) -> None:
    added = Calls()
    runner = TriggerRunner([every(60, nothing, name="a")], connection)
    async with running(runner):
        pass
    runner.add(every(0.02, added, name="added"))
    assert await stays_false(lambda: added.count, duration=0.1)
    assert names(runner) == ["a", "added"]
    async with running(runner):
        await wait_for(lambda: added.count >= 1, what="the added trigger's call")


@pytest.mark.parametrize(
    "item",
    [None, 42, "nothing", b"bytes", 3.5, [nothing]],
    ids=["None", "int", "str", "bytes", "float", "list"],
)
async def test_add_of_anything_but_a_trigger_is_a_type_error(
    connection: FakeConnection, item: Any
) -> None:
    runner = TriggerRunner([every(60, nothing, name="a")], connection)
    with pytest.raises(TypeError):
        runner.add(item)
    async with running(runner):
        with pytest.raises(TypeError):
            runner.add(item)
        assert names(runner) == ["a"]


async def test_add_of_a_coroutine_object_is_a_type_error(connection: FakeConnection) -> None:
    runner = TriggerRunner([], connection)
    coroutine = nothing(None)
    hostile: Any = coroutine
    try:
        with pytest.raises(TypeError):
            runner.add(hostile)
    finally:
        coroutine.close()
    assert names(runner) == []


async def test_add_accepts_every_kind_the_constructor_accepts(connection: FakeConnection) -> None:
    runner = TriggerRunner([], connection)
    runner.add(nothing)
    runner.add(Named())
    runner.add(every(60, nothing, name="periodic"))
    runner.add(lambda ctx: nothing(ctx))
    assert names(runner)[:3] == ["nothing", "shared", "periodic"]
    assert len(runner.stats()) == 4


async def test_add_of_a_trigger_with_a_key_already_in_the_runner_is_a_value_error(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([every(60, nothing, name="a", key="inbox-key-7")], connection)
    with pytest.raises(ValueError, match="inbox-key-7"):
        runner.add(every(30, nothing, name="b", key="inbox-key-7"))
    assert names(runner) == ["a"]
    async with running(runner):
        with pytest.raises(ValueError, match="inbox-key-7"):
            runner.add(every(30, nothing, name="c", key="inbox-key-7"))
        assert names(runner) == ["a"]
        runner.add(every(30, nothing, name="d", key="other"))
    assert names(runner) == ["a", "d"]


# --- remove -------------------------------------------------------------------------------


async def test_remove_cancels_a_coroutine_trigger_and_returns_after_its_cleanup(
    connection: FakeConnection,
) -> None:
    events: list[str] = []
    started = anyio.Event()
    cleaning = cleaning_up_slowly(started, events)
    runner = TriggerRunner([cleaning, every(60, nothing, name="other")], connection)
    async with running(runner):
        await until_set(started)
        await bounded(runner.remove(cleaning), 10)
        assert events == ["cancelled", "finally"]
        assert names(runner) == ["other"]


async def test_remove_cancels_a_native_call_under_way_and_returns_after_its_cleanup(
    connection: FakeConnection,
) -> None:
    events: list[str] = []
    started = anyio.Event()
    trig = every(0.02, cleaning_up_slowly(started, events), name="long")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await until_set(started)
        await bounded(runner.remove(trig), 10)
        assert events == ["cancelled", "finally"]
        assert names(runner) == []


async def test_remove_stops_the_calls_and_leaves_the_other_triggers_running(
    connection: FakeConnection,
) -> None:
    removed, kept = Calls(), Calls()
    python_ticks: list[int] = []

    async def python_loop(ctx: TriggerContext) -> None:
        while True:
            python_ticks.append(1)
            await anyio.sleep(0.01)  # the pace of its ticks

    target = every(0.02, removed, name="removed")
    runner = TriggerRunner([target, every(0.02, kept, name="kept"), python_loop], connection)
    async with running(runner):
        await wait_for(lambda: removed.count >= 2 and kept.count >= 2)
        await bounded(runner.remove(target), 10)
        count = removed.count
        seen_kept, seen_python = kept.count, len(python_ticks)
        await wait_for(
            lambda: kept.count >= seen_kept + 3 and len(python_ticks) >= seen_python + 3,
            what="the other triggers to keep running",
        )
        assert removed.count == count, "a call of the removed trigger after remove() returned"
        assert runner.is_running
        assert names(runner) == ["kept", "python_loop"]


async def test_a_removed_trigger_does_not_come_back_on_the_next_start(
    connection: FakeConnection,
) -> None:
    removed, kept = Calls(), Calls()
    target = every(0.02, removed, name="removed")
    runner = TriggerRunner([target, every(0.02, kept, name="kept")], connection)
    async with running(runner):
        await wait_for(lambda: removed.count >= 1)
        await runner.remove(target)
    count = removed.count
    async with running(runner):
        seen = kept.count
        await wait_for(lambda: kept.count >= seen + 3, what="the kept trigger's calls")
        assert removed.count == count
    assert names(runner) == ["kept"]


async def test_remove_before_start_takes_the_trigger_out(connection: FakeConnection) -> None:
    removed, kept = Calls(), Calls()
    target = every(0.02, removed, name="removed")
    runner = TriggerRunner([target, every(0.02, kept, name="kept")], connection)
    await bounded(runner.remove(target), 10)
    assert names(runner) == ["kept"]
    async with running(runner):
        await wait_for(lambda: kept.count >= 3)
        assert removed.count == 0


async def test_remove_after_stop_takes_the_trigger_out(connection: FakeConnection) -> None:
    removed, kept = Calls(), Calls()
    target = every(0.02, removed, name="removed")
    runner = TriggerRunner([target, every(0.02, kept, name="kept")], connection)
    async with running(runner):
        await wait_for(lambda: removed.count >= 1)
    await bounded(runner.remove("removed"), 10)
    count = removed.count
    assert names(runner) == ["kept"]
    async with running(runner):
        seen = kept.count
        await wait_for(lambda: kept.count >= seen + 3)
        assert removed.count == count


async def test_remove_by_name_removes_every_trigger_with_that_name(
    connection: FakeConnection,
) -> None:
    shared_calls, kept = Calls(), Calls()
    started = anyio.Event()
    cancellations: list[str] = []

    class Shared(Trigger):
        name = "shared"

        async def run(self, ctx: TriggerContext) -> None:
            started.set()
            try:
                await anyio.sleep(3600)
            except cancelled():
                cancellations.append("class")
                raise

    triggers: list[Any] = [
        every(0.02, shared_calls, name="shared"),
        every(0.02, kept, name="kept"),
        Shared(),
        every(0.03, shared_calls, name="shared"),
    ]
    runner = TriggerRunner(triggers, connection)
    async with running(runner):
        await until_set(started)
        await wait_for(lambda: shared_calls.count >= 2)
        await bounded(runner.remove("shared"), 10)
        assert names(runner) == ["kept"]
        assert cancellations == ["class"]
        count, seen = shared_calls.count, kept.count
        await wait_for(lambda: kept.count >= seen + 3)
        assert shared_calls.count == count


async def test_remove_by_object_matches_by_identity_not_by_name(
    connection: FakeConnection,
) -> None:
    first, second = Calls(), Calls()
    target = every(0.02, first, name="twin")
    runner = TriggerRunner([target, every(0.02, second, name="twin")], connection)
    async with running(runner):
        await bounded(runner.remove(target), 10)
        assert names(runner) == ["twin"]
        count = first.count
        await wait_for(lambda: second.count >= 3, what="the other 'twin' to keep running")
        assert first.count == count


async def test_remove_by_object_removes_each_entry_of_that_object(
    connection: FakeConnection,
) -> None:
    runs: list[int] = []

    async def twice(ctx: TriggerContext) -> None:
        runs.append(1)
        await anyio.sleep(3600)

    runner = TriggerRunner([twice, every(60, nothing, name="other"), twice], connection)
    async with running(runner):
        await wait_for(lambda: len(runs) == 2)
        await bounded(runner.remove(twice), 10)
        assert names(runner) == ["other"]


async def test_remove_of_a_trigger_not_in_the_runner_is_a_key_error_naming_it(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([every(60, nothing, name="present")], connection)
    stranger = every(60, nothing, name="stranger-in-town")
    with pytest.raises(KeyError, match="no-such-trigger"):
        await runner.remove("no-such-trigger")
    with pytest.raises(KeyError, match="stranger-in-town"):
        await runner.remove(stranger)
    async with running(runner):
        with pytest.raises(KeyError, match="no-such-trigger"):
            await runner.remove("no-such-trigger")
        with pytest.raises(KeyError, match="stranger-in-town"):
            await runner.remove(stranger)
        assert names(runner) == ["present"]


async def test_remove_twice_is_a_key_error_the_second_time(connection: FakeConnection) -> None:
    target = every(60, nothing, name="once")
    runner = TriggerRunner([target], connection)
    async with running(runner):
        await runner.remove(target)
        with pytest.raises(KeyError, match="once"):
            await runner.remove(target)
        with pytest.raises(KeyError, match="once"):
            await runner.remove("once")


async def test_remove_awaited_inside_the_trigger_being_removed_cancels_it_at_that_await(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    events: list[str] = []
    kept = Calls()
    runners: list[TriggerRunner] = []

    async def self_removing(ctx: TriggerContext) -> None:
        events.append("started")
        try:
            await runners[0].remove(self_removing)
            events.append("remove returned")
        except cancelled():
            events.append("cancelled at remove")
            raise
        finally:
            with anyio.CancelScope(shield=on_trio()):  # as in `cleaning_up_slowly`
                await anyio.sleep(0.01)  # an async cleanup
            events.append("finally")

    runner = TriggerRunner([self_removing, every(0.02, kept, name="kept")], connection)
    runners.append(runner)
    async with running(runner):
        await wait_for(lambda: "finally" in events, what="the trigger's finally")
        assert events == ["started", "cancelled at remove", "finally"]
        await wait_for(lambda: names(runner) == ["kept"], what="the removal to complete")
        seen = kept.count
        await wait_for(lambda: kept.count >= seen + 3, what="the other trigger to keep running")
    assert error_records(caplog) == [], "a cancellation by remove() is no failure"


async def test_remove_from_inside_a_native_call_of_the_trigger_being_removed(
    connection: FakeConnection,
) -> None:
    events: list[str] = []
    triggers: list[Any] = []
    runners: list[TriggerRunner] = []

    async def remove_myself(ctx: TriggerContext) -> None:
        events.append("called")
        try:
            await runners[0].remove(triggers[0])
            events.append("remove returned")
        except cancelled():
            events.append("cancelled at remove")
            raise
        finally:
            events.append("finally")

    trig = every(0.02, remove_myself, name="self-removing")
    triggers.append(trig)
    runner = TriggerRunner([trig, every(60, nothing, name="other")], connection)
    runners.append(runner)
    async with running(runner):
        await wait_for(lambda: "finally" in events, what="the call's finally")
        await wait_for(lambda: names(runner) == ["other"], what="the removal to complete")
        assert await stays_false(lambda: len(events) > 3, duration=0.1)
    assert events == ["called", "cancelled at remove", "finally"]


# --- pause, resume ------------------------------------------------------------------------


async def test_pause_stops_new_calls_and_resume_brings_them_back(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(0.02, calls, name="paced")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: calls.count >= 2)
        runner.pause(trig)
        count = calls.count
        # A call the timer had already begun may still show up; no other may.
        assert await stays_false(lambda: calls.count > count + 1, duration=0.2)
        runner.resume(trig)
        count = calls.count
        await wait_for(lambda: calls.count >= count + 3, what="calls after resume()")


async def test_ticks_due_while_paused_are_skipped_and_the_schedule_resumes_on_its_grid(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    interval = dt.timedelta(seconds=0.05)
    trig = every(interval, calls, name="grid")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: calls.count >= 2)
        runner.pause(trig)
        skipped = stats_of(runner, "grid").skipped
        await wait_for(
            lambda: stats_of(runner, "grid").skipped >= skipped + 3,
            what="ticks skipped while paused",
        )
        count = calls.count
        runner.resume(trig)
        await wait_for(lambda: calls.count >= count + 3, what="calls after resume()")
    dues = scheduled(calls.due)
    off_grid = [due for due in dues if not on_grid(due, dues[0], interval)]
    assert off_grid == [], f"calls off the grid of {dues[0]}: {off_grid}"
    gaps = [b - a for a, b in zip(dues, dues[1:])]
    assert max(gaps) >= 3 * interval, "the paused ticks were replayed, not skipped"


async def test_pause_and_resume_are_idempotent(connection: FakeConnection) -> None:
    calls = Calls()
    trig = every(0.02, calls, name="paced")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        runner.pause(trig)
        runner.pause(trig)
        assert state_of(runner, "paced") == "paused"
        assert await stays_false(lambda: calls.count > 1, duration=0.15)
        runner.resume(trig)
        runner.resume(trig)
        assert state_of(runner, "paced") != "paused"
        await wait_for(lambda: calls.count >= 3)
        runner.resume(trig)  # resuming a trigger that is not paused does nothing
        count = calls.count
        await wait_for(lambda: calls.count >= count + 2)


async def test_pause_before_start_is_kept_the_trigger_starts_paused(
    connection: FakeConnection,
) -> None:
    paused, other = Calls(), Calls()
    trig = every(0.02, paused, name="paused")
    runner = TriggerRunner([trig, every(0.02, other, name="other")], connection)
    runner.pause(trig)
    assert state_of(runner, "paused") == "paused"
    async with running(runner):
        await wait_for(lambda: other.count >= 5, what="the other trigger's calls")
        assert paused.count == 0
        assert state_of(runner, "paused") == "paused"
        runner.resume(trig)
        await wait_for(lambda: paused.count >= 2, what="calls after resume()")


async def test_resume_before_start_undoes_a_pause_before_start(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(0.02, calls, name="paced")
    runner = TriggerRunner([trig], connection)
    runner.pause(trig)
    runner.resume(trig)
    assert state_of(runner, "paced") == "idle"
    async with running(runner):
        await wait_for(lambda: calls.count >= 2)


async def test_paused_survives_stop_and_start(connection: FakeConnection) -> None:
    paused, other = Calls(), Calls()
    trig = every(0.02, paused, name="paused")
    runner = TriggerRunner([trig, every(0.02, other, name="other")], connection)
    async with running(runner):
        runner.pause(trig)
        count = paused.count
    async with running(runner):
        seen = other.count
        await wait_for(lambda: other.count >= seen + 5, what="the other trigger's calls")
        assert paused.count <= count + 1
        assert state_of(runner, "paused") == "paused"
    runner.pause(trig)  # after stop(): kept too
    assert state_of(runner, "paused") == "paused"
    runner.resume(trig)
    async with running(runner):
        count = paused.count
        await wait_for(lambda: paused.count >= count + 2, what="calls after resume()")


async def test_a_call_under_way_when_pause_is_called_finishes_and_no_other_starts(
    connection: FakeConnection,
) -> None:
    gate = Gate()
    trig = every(0.02, gate, name="gated")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await until_set(gate.entered, what="a call to be under way")
        runner.pause(trig)
        assert state_of(runner, "gated") == "paused"
        assert await stays_false(lambda: gate.cancelled or gate.finished, duration=0.1)
        gate.release()
        await wait_for(lambda: gate.finished == 1, what="the call to finish")
        assert gate.cancelled == 0
        assert await stays_false(lambda: gate.calls > 1, duration=0.15)
        assert state_of(runner, "gated") == "paused"


async def test_pause_from_inside_its_own_call_lets_that_call_finish(
    connection: FakeConnection,
) -> None:
    events: list[str] = []
    triggers: list[Any] = []
    runners: list[TriggerRunner] = []

    async def pause_myself(ctx: TriggerContext) -> None:
        events.append("called")
        runners[0].pause(triggers[0])
        await anyio.sleep(0.02)  # the rest of the call, after pause()
        events.append("finished")

    trig = every(0.02, pause_myself, name="self-pausing")
    triggers.append(trig)
    runner = TriggerRunner([trig], connection)
    runners.append(runner)
    async with running(runner):
        await wait_for(lambda: "finished" in events)
        assert await stays_false(lambda: len(events) > 2, duration=0.15)
        assert state_of(runner, "self-pausing") == "paused"
    assert events == ["called", "finished"]


async def test_pause_and_resume_by_name_act_on_every_trigger_with_that_name(
    connection: FakeConnection,
) -> None:
    first, second, other = Calls(), Calls(), Calls()
    runner = TriggerRunner(two_named_shared(0.02, first, second, other), connection)
    async with running(runner):
        runner.pause("shared")
        assert [s.state for s in runner.stats() if s.name == "shared"] == ["paused", "paused"]
        count = first.count
        await wait_for(lambda: other.count >= 5)
        assert first.count <= count + 1
        runner.resume("shared")
        assert all(s.state != "paused" for s in runner.stats())
        await wait_for(lambda: first.count >= count + 3)


@pytest.mark.parametrize("method", ["pause", "resume"])
async def test_pause_and_resume_of_a_coroutine_trigger_are_type_errors(
    connection: FakeConnection, method: str
) -> None:
    started = anyio.Event()
    coroutine_trigger = sleeper(started)
    runner = TriggerRunner([coroutine_trigger, Named()], connection)
    act: Callable[[Any], None] = getattr(runner, method)
    with pytest.raises(TypeError):
        act(coroutine_trigger)
    async with running(runner):
        await until_set(started)
        with pytest.raises(TypeError):
            act(coroutine_trigger)
        with pytest.raises(TypeError):
            act("shared")
        assert [s.state for s in runner.stats()] == ["running", "running"]


@pytest.mark.parametrize("method", ["pause", "resume"])
async def test_pause_and_resume_of_a_name_shared_with_a_coroutine_trigger_do_nothing(
    connection: FakeConnection, method: str
) -> None:
    calls = Calls()
    native = every(0.02, calls, name="shared")
    runner = TriggerRunner([native, Named()], connection)
    act: Callable[[Any], None] = getattr(runner, method)
    if method == "resume":
        runner.pause(native)
    before = [s.state for s in runner.stats()]
    with pytest.raises(TypeError):
        act("shared")
    assert [s.state for s in runner.stats()] == before, "nothing is done"
    async with running(runner):
        with pytest.raises(TypeError):
            act("shared")
        assert state_of_native(runner) == before[0]
        if method == "pause":
            await wait_for(lambda: calls.count >= 3, what="the native trigger, not paused")
        else:
            assert await stays_false(lambda: calls.count, duration=0.15)


def state_of_native(runner: TriggerRunner) -> str:
    (native,) = [s for s in runner.stats() if s.kind != "coroutine"]
    return native.state


@pytest.mark.parametrize("method", ["pause", "resume"])
async def test_pause_and_resume_of_an_unknown_trigger_are_key_errors_naming_it(
    connection: FakeConnection, method: str
) -> None:
    runner = TriggerRunner([every(60, nothing, name="present")], connection)
    act: Callable[[Any], None] = getattr(runner, method)
    stranger = every(60, nothing, name="stranger-in-town")
    with pytest.raises(KeyError, match="no-such-trigger"):
        act("no-such-trigger")
    async with running(runner):
        with pytest.raises(KeyError, match="no-such-trigger"):
            act("no-such-trigger")
        with pytest.raises(KeyError, match="stranger-in-town"):
            act(stranger)
        assert state_of(runner, "present") == "idle"


# --- run_now ------------------------------------------------------------------------------


async def test_run_now_makes_one_call_and_returns_after_it_finished(
    connection: FakeConnection,
) -> None:
    events: list[str] = []

    async def slow(ctx: TriggerContext) -> None:
        events.append("started")
        await anyio.sleep(0.05)  # a call that takes a while
        await ctx.send("from run_now")
        events.append("finished")

    trig = every(3600, slow, name="hourly")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await bounded(runner.run_now(trig), 10)
        assert events == ["started", "finished"]
        assert connection.sent == ["from run_now"]
        assert await stays_false(lambda: len(events) > 2, duration=0.1)


async def test_run_now_leaves_the_schedule_unchanged(connection: FakeConnection) -> None:
    """Interval 0.2 s, run_now just after a scheduled call: the one call due between
    run_now's call and return is its own; every other call stays on the grid."""
    calls = Calls()
    interval = dt.timedelta(seconds=0.2)
    trig = every(interval, calls, name="grid")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: calls.count >= 1)
        before = utc_now()
        await runner.run_now(trig)
        returned = utc_now()
        count = calls.count
        await wait_for(lambda: calls.count >= count + 2, what="scheduled calls after run_now")
    dues = scheduled(calls.due)
    extra = [due for due in dues if before <= due <= returned]
    assert len(extra) == 1, (before, dues, returned)
    off_grid = [due for due in dues if due not in extra and not on_grid(due, dues[0], interval)]
    assert off_grid == [], f"scheduled calls moved off the grid of {dues[0]}: {off_grid}"


async def test_run_now_calls_a_paused_trigger_which_stays_paused(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(0.02, calls, name="paused")
    runner = TriggerRunner([trig], connection)
    runner.pause(trig)
    async with running(runner):
        await bounded(runner.run_now(trig), 10)
        assert calls.count == 1
        assert state_of(runner, "paused") == "paused"
        assert await stays_false(lambda: calls.count > 1, duration=0.15)


async def test_run_now_calls_a_one_shot_before_it_is_due(connection: FakeConnection) -> None:
    calls = Calls()
    trig = after(3600, calls, name="later")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await bounded(runner.run_now(trig), 10)
        assert calls.count == 1


async def test_run_now_calls_a_file_trigger_with_no_changes(
    connection: FakeConnection, tmp_path: Path
) -> None:
    seen: list[tuple[list[FileChange], dt.datetime | None]] = []

    async def on_change(ctx: TriggerContext, changes: list[FileChange]) -> None:
        seen.append((changes, ctx.scheduled_at))

    trig = on_file_change(tmp_path, on_change, name="files")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        before = utc_now()
        await bounded(runner.run_now("files"), 10)
    ((changes, due),) = seen
    assert changes == []
    assert due is not None
    assert before <= due <= utc_now()


async def test_ctx_scheduled_at_in_a_run_now_call_is_the_instant_run_now_was_called(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(3600, calls, name="hourly")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        before = utc_now()
        await runner.run_now(trig)
        returned = utc_now()
    (due,) = scheduled(calls.due)
    assert due.utcoffset() == dt.timedelta(0)
    assert before <= due <= returned, (before, due, returned)
    (ctx,) = calls.contexts
    assert isinstance(ctx, TriggerContext)
    assert ctx.scheduled_at is None, "None once the call is over"


async def test_run_now_waits_for_a_running_scheduled_call_and_never_overlaps_it(
    connection: FakeConnection,
) -> None:
    gate = Gate()
    trig = every(0.02, gate, name="gated")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await until_set(gate.entered, what="a scheduled call to be under way")
        async with anyio.create_task_group() as group:
            extra = in_background(group, runner.run_now(trig))
            try:
                assert await stays_false(lambda: gate.calls > 1 or extra.done, duration=0.15)
                gate.release()
                await ended(extra)
            finally:
                gate.release()
        assert gate.calls >= 2
        assert gate.max_running == 1
        assert gate.cancelled == 0


async def test_run_now_waits_for_a_running_run_now_call_and_keeps_its_own_instant(
    connection: FakeConnection,
) -> None:
    gate = Gate(blocks=lambda ctx: not gate.entered.is_set())  # only the first call blocks
    trig = every(3600, gate, name="hourly")
    runner = TriggerRunner([trig], connection)
    instants: list[dt.datetime] = []  # when the second run_now was called, and released
    async with running(runner), anyio.create_task_group() as group:
        try:
            first = in_background(group, runner.run_now(trig))
            await until_set(gate.entered, what="the first run_now call to be under way")
            instants.append(utc_now())
            second = in_background(group, runner.run_now(trig))
            assert await stays_false(lambda: gate.calls > 1 or second.done, duration=0.15)
            instants.append(utc_now())
            gate.release()
            await ended(first, second)
        finally:
            gate.release()
    assert gate.calls == 2
    assert gate.max_running == 1
    due = scheduled(gate.due)[1]
    before, released_at = instants
    assert before <= due <= released_at, "the instant run_now was called, not the call began"


async def test_a_tick_due_during_a_run_now_call_is_skipped_not_overlapping_it(
    connection: FakeConnection,
) -> None:
    interval = 0.05
    marks: list[dt.datetime] = []

    def blocks(ctx: TriggerContext) -> bool:
        return bool(marks) and ctx.scheduled_at is not None and ctx.scheduled_at >= marks[0]

    gate = Gate(blocks=blocks)
    trig = every(interval, gate, name="paced")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: gate.calls >= 2)
        calls = gate.calls
        await wait_for(lambda: gate.calls > calls, what="just after a scheduled call")
        marks.append(utc_now())
        skipped = stats_of(runner, "paced").skipped
        async with anyio.create_task_group() as group:
            extra = in_background(group, runner.run_now(trig))
            try:
                await until_set(gate.entered, what="the run_now call to be under way")
                calls = gate.calls
                await wait_for(
                    lambda: stats_of(runner, "paced").skipped > skipped,
                    what="a tick due meanwhile to be counted as skipped",
                )
                assert gate.calls == calls, "a scheduled call started during the run_now call"
                gate.release()
                await ended(extra)
            finally:
                gate.release()
        await wait_for(lambda: gate.calls >= calls + 2, what="the schedule to go on")
    assert gate.max_running == 1


async def test_a_failing_run_now_call_is_logged_and_counted_and_run_now_returns(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")

    async def fails(ctx: TriggerContext) -> None:
        raise ValueError("run_now failure 8128")

    trig = every(3600, fails, name="failing-now")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await bounded(runner.run_now(trig), 10)  # does not raise
        await wait_for(lambda: error_records(caplog))
        await wait_for(lambda: stats_of(runner, "failing-now").failures == 1)
        stats = stats_of(runner, "failing-now")
        assert (stats.calls, stats.failures, stats.consecutive_failures) == (1, 1, 1)
        assert stats.last_error is not None
        assert "run_now failure 8128" in stats.last_error
    (record,) = error_records(caplog)
    assert "failing-now" in record.getMessage()
    assert "run_now failure 8128" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError


async def test_run_now_before_start_is_a_runtime_error_and_calls_nothing(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(0.02, calls, name="not-started")
    runner = TriggerRunner([trig], connection)
    with pytest.raises(RuntimeError, match="start"):
        await bounded(runner.run_now(trig), 10)
    assert not runner.is_running
    assert await stays_false(lambda: calls.count > 0, duration=0.1), "run_now starts nothing"


async def test_run_now_after_stop_is_a_runtime_error_and_calls_nothing(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(3600, calls, name="stopped")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        pass
    with pytest.raises(RuntimeError, match="start"):
        await bounded(runner.run_now(trig), 10)
    assert calls.count == 0
    assert connection.sent == []
    assert not runner.is_running


async def test_run_now_by_name_calls_each_trigger_with_that_name_once(
    connection: FakeConnection,
) -> None:
    first, second, other = Calls(), Calls(), Calls()
    runner = TriggerRunner(two_named_shared(3600, first, second, other), connection)
    async with running(runner):
        await bounded(runner.run_now("shared"), 10)
        assert (first.count, second.count, other.count) == (1, 1, 0)


async def test_run_now_of_a_coroutine_trigger_is_a_type_error(connection: FakeConnection) -> None:
    started = anyio.Event()
    coroutine_trigger = sleeper(started)
    runner = TriggerRunner([coroutine_trigger], connection)
    hostile: Any = coroutine_trigger  # not a native trigger, on purpose
    with pytest.raises(TypeError):
        await runner.run_now(hostile)
    async with running(runner):
        await until_set(started)
        with pytest.raises(TypeError):
            await runner.run_now(hostile)


async def test_run_now_of_a_name_shared_with_a_coroutine_trigger_calls_nothing(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    runner = TriggerRunner([every(3600, calls, name="shared"), Named()], connection)
    with pytest.raises(TypeError):
        await runner.run_now("shared")
    async with running(runner):
        with pytest.raises(TypeError):
            await runner.run_now("shared")
        assert await stays_false(lambda: calls.count, duration=0.1)


async def test_run_now_of_an_unknown_trigger_is_a_key_error_naming_it(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([every(3600, nothing, name="present")], connection)
    stranger = every(3600, nothing, name="stranger-in-town")
    with pytest.raises(KeyError, match="no-such-trigger"):
        await runner.run_now("no-such-trigger")
    async with running(runner):
        with pytest.raises(KeyError, match="no-such-trigger"):
            await runner.run_now("no-such-trigger")
        with pytest.raises(KeyError, match="stranger-in-town"):
            await runner.run_now(stranger)


# --- arguments that are not a trigger or a name -------------------------------------------

NOT_A_TRIGGER: list[Any] = [None, 42, 3.5, b"name", ["name"]]
NOT_A_TRIGGER_IDS = ["None", "int", "float", "bytes", "list"]


@pytest.mark.parametrize("argument", NOT_A_TRIGGER, ids=NOT_A_TRIGGER_IDS)
@pytest.mark.parametrize("method", ["remove", "pause", "resume", "run_now"])
async def test_an_argument_neither_a_name_nor_a_trigger_is_a_type_error_naming_trigger(
    connection: FakeConnection, method: str, argument: Any
) -> None:
    runner = TriggerRunner([every(3600, nothing, name="present")], connection)

    async def act() -> None:
        result = getattr(runner, method)(argument)
        if result is not None:
            await result

    with pytest.raises(TypeError, match=r"\btrigger\b"):
        await act()
    async with running(runner):
        with pytest.raises(TypeError, match=r"\btrigger\b"):
            await act()
        assert names(runner) == ["present"]
        assert state_of(runner, "present") == "idle"


# --- the thread they are called from ------------------------------------------------------

SyncCall = Callable[[TriggerRunner, Any], object]
SYNC_CALLS: dict[str, SyncCall] = {
    "add": lambda runner, trig: runner.add(every(3600, nothing, name="added")),
}
AsyncCall = Callable[[TriggerRunner, Any], Awaitable[None]]
ASYNC_CALLS: dict[str, AsyncCall] = {
    "remove": lambda runner, trig: runner.remove(trig),
    "run_now": lambda runner, trig: runner.run_now(trig),
}


@pytest.mark.parametrize("call", SYNC_CALLS.values(), ids=SYNC_CALLS.keys())
async def test_a_change_from_another_thread_while_started_is_a_runtime_error(
    connection: FakeConnection, call: SyncCall
) -> None:
    calls = Calls()
    trig = every(3600, calls, name="present")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        with pytest.raises(RuntimeError):
            await in_another_thread(lambda: call(runner, trig))
        assert names(runner) == ["present"]
        assert state_of(runner, "present") == "idle"


async def test_pause_and_resume_from_another_thread_while_started_take_effect(
    connection: FakeConnection,
) -> None:
    calls = Calls()
    trig = every(3600, calls, name="present")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await in_another_thread(lambda: runner.pause(trig))
        assert state_of(runner, "present") == "paused"
        await in_another_thread(lambda: runner.resume("present"))
        assert state_of(runner, "present") == "idle"


@pytest.mark.parametrize("call", ASYNC_CALLS.values(), ids=ASYNC_CALLS.keys())
async def test_remove_or_run_now_from_another_thread_while_started_is_a_runtime_error(
    connection: FakeConnection, call: AsyncCall
) -> None:
    calls = Calls()
    trig = every(3600, calls, name="present")
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        with pytest.raises(RuntimeError):
            await in_another_thread(awaited_on_a_loop_of_its_own(lambda: call(runner, trig)))
        assert names(runner) == ["present"]
        assert calls.count == 0


# --- racing stop() ------------------------------------------------------------------------


async def test_add_just_before_stop_leaves_nothing_running_and_keeps_the_trigger(
    connection: FakeConnection,
) -> None:
    added = Calls()
    runner = TriggerRunner([every(0.01, nothing, name="first")], connection)
    for round_ in range(5):
        await runner.start()
        runner.add(every(0.01, added, name=f"added-{round_}"))
        await bounded(runner.stop(), 10)
        assert not runner.is_running
        count = added.count
        assert await stays_false(lambda: added.count > count, duration=0.05)  # noqa: B023
    assert names(runner) == ["first", *(f"added-{round_}" for round_ in range(5))]
    async with running(runner):
        count = added.count
        await wait_for(lambda: added.count >= count + 5, what="the added triggers on restart")


async def test_add_while_stop_is_under_way_fires_nothing_after_stop_returns(
    connection: FakeConnection,
) -> None:
    slow = SlowCleanup()
    added = Calls()
    runner = TriggerRunner([slow], connection)
    await runner.start()
    try:
        await until_set(slow.started)
        async with anyio.create_task_group() as group:
            stopping = in_background(group, runner.stop())
            try:
                await until_set(slow.cancelling, what="stop() to be under way")
                runner.add(every(0.01, added, name="added"))
                assert not stopping.done
                slow.release()
                await ended(stopping)
            finally:
                slow.release()
    finally:
        slow.release()
        await bounded(runner.stop(), 10)
    assert slow.cleaned_up
    assert not runner.is_running
    count = added.count
    assert await stays_false(lambda: added.count > count, duration=0.1)
    assert names(runner) == ["slow-cleanup", "added"]
    async with running(runner):
        await wait_for(lambda: added.count > count, what="the added trigger on restart")


@pytest.mark.parametrize("first", ["stop", "remove"])
async def test_remove_racing_stop_both_complete_and_the_trigger_is_gone(
    connection: FakeConnection, first: str
) -> None:
    removed, kept = Calls(), Calls()
    target = every(0.01, removed, name="removed")
    runner = TriggerRunner([target, every(0.01, kept, name="kept")], connection)
    for _ in range(5):
        await runner.start()
        seen = kept.count
        await wait_for(lambda: kept.count > seen)  # noqa: B023
        calls: list[Awaitable[None]] = [runner.stop(), runner.remove(target)]
        if first == "remove":
            calls.reverse()
        with anyio.fail_after(10):
            # Concurrently, the first awaited first: the second in a task, which
            # starts once the first has begun and waits.
            async with anyio.create_task_group() as group:
                in_background(group, calls[1])
                await calls[0]
        assert not runner.is_running
        assert names(runner) == ["kept"]
        counts = (removed.count, kept.count)
        assert await stays_false(
            lambda: (removed.count, kept.count) != counts,  # noqa: B023
            duration=0.05,
        )
        runner.add(target)
    await runner.remove(target)
    async with running(runner):
        count, seen = removed.count, kept.count
        await wait_for(lambda: kept.count >= seen + 3)
        assert removed.count == count


async def test_remove_while_stop_waits_for_that_triggers_cleanup_completes_with_it(
    connection: FakeConnection,
) -> None:
    slow, kept = SlowCleanup(), Calls()
    runner = TriggerRunner([slow, every(0.01, kept, name="kept")], connection)
    await runner.start()
    try:
        await until_set(slow.started)
        async with anyio.create_task_group() as group:
            try:
                stopping = in_background(group, runner.stop())
                await until_set(slow.cancelling, what="stop() to be under way")
                removing = in_background(group, runner.remove(slow))
                assert await stays_false(lambda: stopping.done or removing.done, duration=0.05)
                slow.release()
                await ended(stopping, removing)
            finally:
                slow.release()
    finally:
        slow.release()
        await bounded(runner.stop(), 10)
    assert slow.cleaned_up
    assert names(runner) == ["kept"]
    assert not runner.is_running


async def test_stop_while_remove_waits_for_cleanup_completes_with_it(
    connection: FakeConnection,
) -> None:
    slow, kept = SlowCleanup(), Calls()
    runner = TriggerRunner([slow, every(0.01, kept, name="kept")], connection)
    await runner.start()
    try:
        await until_set(slow.started)
        async with anyio.create_task_group() as group:
            try:
                removing = in_background(group, runner.remove(slow))
                await until_set(slow.cancelling, what="remove() to be under way")
                stopping = in_background(group, runner.stop())
                assert await stays_false(lambda: removing.done, duration=0.05)
                slow.release()
                await ended(stopping, removing)
            finally:
                slow.release()
    finally:
        slow.release()
        await bounded(runner.stop(), 10)
    assert slow.cleaned_up
    assert names(runner) == ["kept"]
    assert not runner.is_running
    count = kept.count
    assert await stays_false(lambda: kept.count > count, duration=0.05)


# --- regressions found in review ----------------------------------------------------------


async def remove_while_it_runs_and_a_run_now_waits(runner: TriggerRunner, name: str) -> None:
    """Add an overrunning `every` named `name`, then remove it while a `run_now` of it
    waits for its turn: once `remove` has returned, no call of it starts."""
    started = Calls()

    async def overrunning(ctx: TriggerContext) -> None:
        await started(ctx)
        await anyio.sleep(0.01)  # longer than the interval: ticks come due at once

    runner.add(every(0.005, overrunning, name=name))
    await wait_for(lambda: started.count >= 2, what="two calls")
    async with anyio.create_task_group() as group:
        racing = await begun(group, runner.run_now(name))  # under way before remove
        await bounded(runner.remove(name), 10)
        after_remove = started.count
        assert await stays_false(lambda: started.count > after_remove, duration=0.05), name
        await ended(racing)
        assert started.count == after_remove, name


async def test_a_removed_trigger_never_starts_a_call_after_remove_returned(
    connection: FakeConnection,
) -> None:
    """A tick already past its own checks, or a `run_now` waiting for the trigger's
    turn, when the trigger is removed: neither starts a call once `remove` returned."""
    runner = TriggerRunner([], connection)
    async with running(runner):
        for round_ in range(20):
            await remove_while_it_runs_and_a_run_now_waits(runner, f"fast-{round_}")


async def test_a_stop_during_a_source_triggers_call_leaves_it_not_running(
    connection: FakeConnection,
) -> None:
    began = anyio.Event()

    async def slow(ctx: TriggerContext) -> None:
        began.set()
        await anyio.sleep(3600)

    runner = TriggerRunner([after(0.01, slow, name="once")], connection)
    async with running(runner):
        await until_set(began, what="the one-shot's call")
        assert state_of(runner, "once") == "running"
    assert state_of(runner, "once") != "running"
    await runner.start()
    try:
        assert state_of(runner, "once") != "running"
    finally:
        await bounded(runner.stop(), 10)


async def test_a_call_a_stop_abandoned_does_not_hold_the_trigger_in_the_next_run(
    connection: FakeConnection,
) -> None:
    """`stop(timeout)` abandons a call that ignores its cancellation; started again,
    the trigger's ticks are not skipped for the abandoned call's turn."""
    stubborn = Stubborn()
    calls = Calls()

    async def first_stubborn_then_quick(ctx: TriggerContext) -> None:
        if stubborn.calls == 0:
            await stubborn(ctx)
        else:
            await calls(ctx)

    runner = TriggerRunner([every(0.02, first_stubborn_then_quick, name="t")], connection)
    await runner.start()
    try:
        await until_set(stubborn.started, what="the stubborn call")
        await bounded(runner.stop(timeout=0.1), 10)
        await runner.start()
        await wait_for(lambda: calls.count >= 2, what="calls of the next run")
    finally:
        stubborn.release()
        await bounded(runner.stop(), 10)


async def test_file_changes_during_a_run_now_call_wait_for_it(
    connection: FakeConnection, tmp_path: Path
) -> None:
    extra_began, release = anyio.Event(), anyio.Event()
    seen: list[list[str]] = []

    async def on_change(ctx: TriggerContext, changes: list[FileChange]) -> None:
        if not changes:  # the run_now call
            extra_began.set()
            await release.wait()
            return
        seen.append([Path(change.path).name for change in changes])

    runner = TriggerRunner([on_file_change(tmp_path, on_change, name="files")], connection)
    async with running(runner):
        async with anyio.create_task_group() as group:
            extra = in_background(group, runner.run_now("files"))
            try:
                await until_set(extra_began, what="the extra call")
                (tmp_path / "note.txt").write_text("changed")
                # Seen (debounced) while the extra call still runs: it waits for its turn.
                assert await stays_false(lambda: seen, duration=0.3)
                release.set()
                await ended(extra)
            finally:
                release.set()
        await wait_for(lambda: any("note.txt" in names for names in seen), what="the change")
    assert stats_of(runner, "files").skipped == 0


def test_a_bad_item_is_reported_before_a_bad_connection() -> None:
    bad_connection: Any = object()
    not_a_trigger: Any = 42
    with pytest.raises(TypeError, match=r"triggers\[0\]"):
        TriggerRunner([not_a_trigger], bad_connection)
