"""Leaks: many start/stop cycles of a 20-trigger runner leave nothing behind, and
nor does a runner dropped without stop().

Requirement: 5,000 start/stop cycles of a 20-trigger runner — resident memory grows
< 5 MB and gc-tracked objects do not grow; weak references show runners, contexts,
triggers and callbacks freed after ``stop()`` and ``del``.

Each cycle uses every kind of trigger (Python async functions that send and loop, a
``@trigger`` function, a ``Trigger`` subclass, ``every``, ``after``, ``at``, ``cron``) and
waits until each of them, but cron, has really run once before stopping: a leak in
handing a call to the host, in a context or in a cancelled task shows up, not only one
in arming and disarming. Cron fires on whole seconds, so it only starts and stops.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import resource
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Union

import anyio
import pytest

from agent_triggers import (
    Trigger,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    after,
    at,
    cron,
    every,
    trigger,
)
from agent_triggers._core import NativeTrigger

from conftest import FakeConnection, bounded, sleeper, until_set, wait_for

CYCLES = 5_000
# Cycles run before the baseline is taken: first-use allocations (the tokio runtime and
# its threads, the timer thread, interned names, lazily imported helpers, malloc arenas
# reaching their working size) are not leaks.
WARMUP = 300
RSS_GROWTH_LIMIT = 5 * 1024 * 1024
# gc-tracked objects may differ by a few hundred between two quiescent moments without
# any leak: the host's own bookkeeping fills and drains in batches (asyncio keeps
# cancelled TimerHandles in its heap until they are more than half of it, and its ready
# queue and the loop's task set), as do caches of `typing`/`inspect`. 1,000 is 0.2
# object a cycle: any per-cycle leak (one object or more a cycle, 5,000 or more in all)
# is well above it.
GC_OBJECTS_TOLERANCE = 1_000
# Small enough that a cycle stays short (each trigger runs once per cycle), large
# enough not to be a busy loop.
INTERVAL = 0.001
# A generous bound on how long one cycle may wait for its triggers to run.
CYCLE_TIMEOUT = 10.0
# The triggers 0..REQUIRED-1 run within a cycle; the last two are cron triggers.
REQUIRED = 18

TriggerItem = Union[Callable[[TriggerContext], Awaitable[object]], Trigger, NativeTrigger]


class Cycle:
    """One start/stop cycle's bookkeeping: which triggers have run, with which context."""

    def __init__(self, required: range = range(REQUIRED)) -> None:
        self.required = required
        # trigger index -> the context it was given, captured as a trigger that keeps
        # its context would: the cycle (and so the triggers) keep them alive.
        self.ran: dict[int, TriggerContext] = {}
        self.all_ran = anyio.Event()

    def record(self, index: int, ctx: TriggerContext) -> None:
        if index not in self.ran:
            self.ran[index] = ctx
            if all(i in self.ran for i in self.required):
                self.all_ran.set()

    async def wait(self) -> None:
        try:
            await bounded(self.all_ran.wait(), CYCLE_TIMEOUT)
        except TimeoutError:
            missing = sorted(set(self.required) - set(self.ran))
            pytest.fail(f"triggers {missing} did not run within {CYCLE_TIMEOUT} s")

    async def run(self, runner: TriggerRunner) -> None:
        """Start `runner` (anew: what an earlier run recorded is forgotten), wait
        until every required trigger has run, stop it."""
        self.ran.clear()
        self.all_ran = anyio.Event()  # anyio's events are never cleared
        async with runner:
            await self.wait()
        assert not runner.is_running


class Looping(Trigger):
    """A class-based trigger: delivers, then keeps delivering until cancelled."""

    delivery = TriggerDelivery.SEND_IMMEDIATELY

    def __init__(self, cycle: Cycle, index: int) -> None:
        self.cycle = cycle
        self.index = index

    async def run(self, ctx: TriggerContext) -> None:
        self.cycle.record(self.index, ctx)
        while True:
            await ctx.deliver("class")
            await anyio.sleep(INTERVAL)


def build_triggers(cycle: Cycle) -> list[TriggerItem]:
    """The 20 triggers of one cycle, fresh objects each time, the cron ones last."""

    def sends_and_loops(index: int) -> Callable[[TriggerContext], Awaitable[None]]:
        async def loop(ctx: TriggerContext) -> None:
            cycle.record(index, ctx)
            while True:
                await ctx.send("python")
                await anyio.sleep(INTERVAL)

        return loop

    def decorated(index: int) -> Callable[[TriggerContext], Awaitable[None]]:
        @trigger(name=f"decorated_{index}", delivery=TriggerDelivery.WAIT_IDLE)
        async def once(ctx: TriggerContext) -> None:
            cycle.record(index, ctx)
            await ctx.deliver("decorated")

        return once

    def callback(index: int) -> Callable[[TriggerContext], Awaitable[None]]:
        async def call(ctx: TriggerContext) -> None:
            cycle.record(index, ctx)
            await ctx.deliver("native")

        return call

    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    triggers: list[TriggerItem] = [
        sends_and_loops(0),
        sends_and_loops(1),
        sends_and_loops(2),
        sends_and_loops(3),
        decorated(4),
        decorated(5),
        Looping(cycle, 6),
        Looping(cycle, 7),
        every(INTERVAL, callback(8)),
        every(INTERVAL, callback(9), delivery=TriggerDelivery.SEND_IMMEDIATELY),
        every(INTERVAL, callback(10)),
        every(INTERVAL, callback(11), delivery=TriggerDelivery.WAIT_IDLE),
        every(dt.timedelta(seconds=INTERVAL), callback(12)),
        every(INTERVAL, callback(13), name="named"),
        after(0, callback(14)),
        after(INTERVAL, callback(15)),
        after(0, callback(16), delivery=TriggerDelivery.SEND_IMMEDIATELY),
        at(past, callback(17)),  # already past: fires at once
        cron("* * * * * *", callback(18)),
        cron("*/5 * * * *", callback(19)),
    ]
    assert len(triggers) == REQUIRED + 2
    return triggers


async def one_cycle() -> None:
    """Build a runner, start it, wait until every trigger has run, stop it, drop it."""
    cycle = Cycle()
    await cycle.run(TriggerRunner(build_triggers(cycle), FakeConnection()))


def rss_bytes() -> int:
    """Resident memory now (Linux), else the peak (a lower bound on any growth)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def gc_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def open_fds() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


async def assert_flat_over_cycles(cycle: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `cycle` WARMUP times, then CYCLES times: resident memory, gc-tracked
    objects and open file descriptors must not grow over the latter."""
    for _ in range(WARMUP):
        await cycle()
    objects_before = gc_objects()
    rss_before = rss_bytes()
    fds_before = open_fds()

    started = time.perf_counter()
    for _ in range(CYCLES):
        await cycle()
    elapsed = time.perf_counter() - started

    objects_after = gc_objects()
    rss_after = rss_bytes()
    if fds_before is not None:
        # The last cycle's doorbell socket is closed on the host itself (by asyncio's
        # loop, in a callback its runner's drop schedules; by the runner's trio serve
        # task, as it ends): give it a (bounded) moment.
        await wait_for(lambda: (open_fds() or 0) <= fds_before, what="file descriptors closed")
    fds_after = open_fds()
    growth = f"{CYCLES} {what} in {elapsed:.1f} s"
    assert rss_after - rss_before < RSS_GROWTH_LIMIT, (
        f"resident memory grew {(rss_after - rss_before) / 2**20:.2f} MB over {growth}"
    )
    assert objects_after - objects_before < GC_OBJECTS_TOLERANCE, (
        f"gc-tracked objects grew {objects_before} -> {objects_after} over {growth}"
    )
    if fds_before is not None and fds_after is not None:
        assert fds_after <= fds_before, f"file descriptors {fds_before} -> {fds_after}"


# The two 5,000-cycle soaks take 10-20 s each alone on a 2-core machine, and up to
# four times that beside the rest of the suite on a slower one: the suite's 60 s
# per-test limit would fail them for being slow, not for leaking.
SOAK_TIMEOUT = 300


@pytest.mark.timeout(SOAK_TIMEOUT)
async def test_5000_start_stop_cycles_grow_neither_memory_nor_objects() -> None:
    await assert_flat_over_cycles(one_cycle, "cycles")


@pytest.mark.timeout(SOAK_TIMEOUT)
async def test_one_runner_restarted_5000_times_grows_neither_memory_nor_objects() -> None:
    # at() fires once per trigger object, not once per start: trigger 17 is not waited for.
    cycle = Cycle(required=range(REQUIRED - 1))
    runner = TriggerRunner(build_triggers(cycle), FakeConnection())

    async def restart() -> None:
        # The triggers are the same objects each time; only the bookkeeping is new.
        await cycle.run(runner)

    await assert_flat_over_cycles(restart, "restarts")


def weak_references(
    runner: TriggerRunner, triggers: list[TriggerItem], connection: FakeConnection
) -> dict[str, Callable[[], object]]:
    """Weak references to the runner, its connection, each trigger and each callback."""
    refs: dict[str, Callable[[], object]] = {
        "runner": weakref.ref(runner),
        "connection": weakref.ref(connection),
    }
    for index, item in enumerate(triggers):
        # A Python trigger is its own callback; a native one wraps one.
        refs[f"trigger {index}"] = weakref.ref(item)
        if isinstance(item, NativeTrigger):
            refs[f"callback of trigger {index}"] = weakref.ref(item.callback)
    return refs


def weak_contexts(cycle: Cycle) -> dict[str, Callable[[], object]]:
    """Weak references to the contexts the triggers were given (and captured)."""
    for index, ctx in cycle.ran.items():
        assert isinstance(ctx, TriggerContext), f"trigger {index} was given {ctx!r}"
    return {f"context of trigger {index}": weakref.ref(ctx) for index, ctx in cycle.ran.items()}


def alive(refs: dict[str, Callable[[], object]]) -> list[str]:
    return [what for what, ref in refs.items() if ref() is not None]


async def test_runners_contexts_triggers_and_callbacks_are_freed_after_stop_and_del() -> None:
    cycle = Cycle()
    triggers = build_triggers(cycle)
    connection = FakeConnection()
    runner = TriggerRunner(triggers, connection)
    refs = weak_references(runner, triggers, connection)
    await cycle.run(runner)
    refs.update(weak_contexts(cycle))
    # 20 triggers, 8 native callbacks, at least 18 contexts, the runner, the connection
    assert len(refs) >= 20 + 8 + REQUIRED + 2
    assert len(alive(refs)) == len(refs), "all alive while referenced, or the test proves nothing"

    del runner, triggers, cycle, connection
    gc.collect()
    assert alive(refs) == []


async def test_a_runner_dropped_while_started_frees_everything_once_its_tasks_end() -> None:
    """docs/contract.md §4: a runner collected without stop() aborts its tasks; they do not keep
    it alive, and once they have ended nothing of the runner is left."""
    cycle = Cycle()
    triggers = build_triggers(cycle)
    connection = FakeConnection()
    runner = TriggerRunner(triggers, connection)
    refs = weak_references(runner, triggers, connection)
    await runner.start()
    await cycle.wait()
    refs.update(weak_contexts(cycle))
    assert len(alive(refs)) == len(refs)

    del runner, triggers, cycle, connection

    def all_freed() -> bool:
        gc.collect()
        return not alive(refs)

    await wait_for(all_freed, timeout=10.0, what="everything the dropped runner held freed")


async def test_a_connection_held_elsewhere_survives_collecting_a_runner_and_its_contexts() -> None:
    # Each object showing the connection to the garbage collector must own the
    # reference it shows. When the runner and its contexts showed one shared
    # reference, a collection counted more references than there were: a
    # connection alive elsewhere (here: held by an object the collector does
    # not look at) was taken for garbage and cleared while still in use.
    async def run_in_a_garbage_cycle(connection: FakeConnection) -> None:
        cycle: dict[str, object] = {}

        async def keep_context(ctx: TriggerContext) -> None:
            cycle["context"] = ctx
            await ctx.send("hello")

        runner = TriggerRunner([keep_context], connection)
        cycle["runner"], cycle["self"] = runner, cycle
        await runner.start()
        await wait_for(lambda: connection.sent == ["hello"])
        await runner.stop()

    outside: list[FakeConnection] = []
    gc.collect()
    gc.freeze()  # `outside` is now out of the collector's sight
    try:
        outside.append(FakeConnection())
        await run_in_a_garbage_cycle(outside[0])
        gc.collect()
        assert getattr(outside[0], "sent", None) == ["hello"], "the connection was cleared"
    finally:
        gc.unfreeze()


# --- a runner dropped without stop() (docs/contract.md §4) ----------------------------


async def test_runner_dropped_without_stop_cancels_python_triggers(
    connection: FakeConnection,
) -> None:
    ticks: list[int] = []
    finished: list[str] = []

    async def ticking(ctx: TriggerContext) -> None:
        try:
            while True:
                ticks.append(1)
                await anyio.sleep(0.01)  # the pace of its ticks
        finally:
            finished.append("finally")

    runner = TriggerRunner([ticking], connection)
    await runner.start()
    await wait_for(lambda: len(ticks) >= 3)
    del runner
    gc.collect()
    await wait_for(lambda: finished == ["finally"], what="the dropped runner's trigger to end")
    count = len(ticks)
    await anyio.sleep(0.1)  # ten of its ticks' time for a stray tick to show up (a negative)
    assert len(ticks) == count


async def test_runner_dropped_without_stop_stops_native_triggers(
    connection: FakeConnection,
) -> None:
    calls: list[int] = []

    async def callback(ctx: object) -> None:
        calls.append(1)

    runner = TriggerRunner([every(0.01, callback)], connection)
    await runner.start()
    await wait_for(lambda: len(calls) >= 3)
    del runner
    gc.collect()

    async def stopped_firing() -> bool:
        before = len(calls)
        await anyio.sleep(0.15)  # fifteen intervals: time for a stray call to show up
        return len(calls) == before

    deadline = anyio.current_time() + 5.0
    while not await stopped_firing():
        assert anyio.current_time() < deadline, (
            "the every() trigger kept firing after its runner died"
        )


async def test_trigger_tasks_do_not_keep_the_runner_alive(connection: FakeConnection) -> None:
    async def callback(ctx: object) -> None:
        pass

    started = anyio.Event()
    runner = TriggerRunner([sleeper(started), every(0.05, callback)], connection)
    await runner.start()
    await until_set(started)  # its task is running, holding whatever it holds
    ref = weakref.ref(runner)
    del runner
    gc.collect()

    def collected() -> bool:
        gc.collect()
        return ref() is None

    await wait_for(collected, what="the runner to be collected")
