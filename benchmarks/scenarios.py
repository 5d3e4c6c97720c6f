"""The scenarios, their parameters, and how each one is measured inside a worker.

Every figure is measured the same way for every implementation: the same callbacks,
the same clock (``time.perf_counter``), the same windows. ``measure`` returns the
figures as a JSON-ready dict and leaves the triggers running: the worker stops them,
and times that too.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import anyio
import psutil
from implementations import Callback, Implementation, TriggerSpec

# Schedule-error distributions are passed on as these quantiles (dense in the tail).
QUANTILE_LEVELS = sorted({i / 200 for i in range(200)} | {0.99 + i / 10_000 for i in range(101)})


@dataclass(frozen=True)
class TimingScenario:
    """``triggers`` triggers every ``interval`` s for ``duration`` s; every call is timed."""

    name: str
    title: str
    triggers: int
    interval: float
    duration: float
    callback_sleep: float = 0.0
    # A 5 ms time.sleep() in the loop thread once per 20 ms window, at a seeded
    # random phase so that it does not lock onto the triggers' grid.
    block_loop: bool = False
    kind: str = "timing"


@dataclass(frozen=True)
class ScaleScenario:
    """Arm ``triggers`` idle triggers; time arming and stopping, weigh the idle set."""

    name: str
    title: str
    triggers: int
    interval: float = 3600.0
    settle: float = 0.5
    idle_window: float = 2.0
    kind: str = "scale"


@dataclass(frozen=True)
class ThroughputScenario:
    """Many fast triggers: how many calls complete per second, at what CPU cost."""

    name: str
    title: str
    triggers: int
    interval: float
    warmup: float = 0.5
    window: float = 2.0
    kind: str = "throughput"


Scenario = Union[TimingScenario, ScaleScenario, ThroughputScenario]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        TimingScenario(
            "drift",
            "drift: 1 trigger @ 20 ms, callback sleeps 8 ms, 10 s",
            triggers=1,
            interval=0.020,
            duration=10.0,  # 500 ticks, so that p99 is not just the second-worst call
            callback_sleep=0.008,
        ),
        TimingScenario(
            "fanout",
            "fan-out: 1,000 triggers @ 100 ms, trivial callback, 3 s",
            triggers=1_000,
            interval=0.100,
            duration=3.0,
        ),
        TimingScenario(
            "loaded",
            "loaded loop: fan-out + 5 ms time.sleep() in the loop every 20 ms, 3 s",
            triggers=1_000,
            interval=0.100,
            duration=3.0,
            block_loop=True,
        ),
        ScaleScenario("scale50k", "scale: 50,000 triggers @ 1 h", triggers=50_000),
        ScaleScenario("scale200k", "scale: 200,000 triggers @ 1 h", triggers=200_000),
        ThroughputScenario(
            "throughput", "throughput: 10,000 triggers @ 1 ms, 2 s", triggers=10_000, interval=0.001
        ),
    )
}


# --- measurement helpers ----------------------------------------------------------------


def ideal_calls(duration: float, interval: float) -> int:
    """Calls a perfect trigger makes in ``duration``: ``floor(duration / interval)``."""
    return math.floor(duration / interval + 1e-9)  # 3.0 / 0.1 is 29.999...


def schedule_errors(times: Sequence[float], origin: float, interval: float) -> list[float]:
    """Each call's lateness against the grid ``origin + k*interval``, in seconds.

    ``k`` is the call's ideal index: the grid point at or before the call, so every
    error lies in ``[0, interval)``.
    """
    errors = []
    for t in times:
        offset = t - origin
        errors.append(offset - math.floor(offset / interval) * interval)
    return errors


def jitter(times: Sequence[float], interval: float) -> list[float]:
    """Each call's distance from the trigger's own grid, anchored on its first call.

    The grid is ``first + (k-1)*interval``, and ``k`` is the *nearest* grid point:
    against the grid point at or before the call, any call a little less late than
    the first one would count as almost a whole interval late. The first call, on
    the grid by construction, is left out.
    """
    if not times:
        return []
    origin = times[0] - interval
    errors = []
    for t in times[1:]:
        offset = t - origin
        errors.append(abs(offset - round(offset / interval) * interval))
    return errors


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linearly interpolated."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def error_summary(errors: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and max in ms, plus the distribution's quantiles for the plot."""
    if not errors:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "quantiles_ms": []}
    ordered = sorted(e * 1000 for e in errors)
    return {
        "p50_ms": quantile(ordered, 0.50),
        "p99_ms": quantile(ordered, 0.99),
        "max_ms": ordered[-1],
        "quantiles_ms": [quantile(ordered, q) for q in QUANTILE_LEVELS],
    }


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


async def settle(seconds: float) -> None:
    """Collect garbage and let the process go quiet before a measurement."""
    gc.collect()
    await anyio.sleep(seconds)


def recording_callback(times: list[float], sleep: float) -> Callback:
    """A callback that records when it was called, then optionally awaits a sleep."""
    record = times.append
    clock = time.perf_counter

    if sleep > 0:

        async def sleeping(ctx: object) -> None:
            record(clock())
            await anyio.sleep(sleep)

        return sleeping

    async def trivial(ctx: object) -> None:
        record(clock())

    return trivial


async def idle_callback(ctx: object) -> None:
    """Shared by every scale trigger, so that memory per trigger is the runner's own."""


async def block_loop(origin: float, period: float = 0.020, block: float = 0.005) -> None:
    """Block the loop thread for ``block`` s once per ``period`` s window, until cancelled."""
    phases = random.Random(20_240_601)
    k = 0
    while True:
        due = origin + k * period + phases.uniform(0.0, period - block)
        await anyio.sleep(max(0.0, due - anyio.current_time()))
        time.sleep(block)  # noqa: ASYNC251 -- the point: a handler that hogs the loop
        k += 1


# --- scenarios --------------------------------------------------------------------------


async def measure_timing(impl: Implementation, scenario: TimingScenario) -> dict[str, Any]:
    """Run the triggers for ``duration`` and time every call against its ideal time.

    ``t0`` is the moment ``start()`` is called (all triggers are started together).
    A call counts if it comes before ``t0 + duration + interval/2``, so a last tick
    due exactly at ``t0 + duration`` is not lost to a race with the end of the window.
    """
    calls: list[list[float]] = [[] for _ in range(scenario.triggers)]
    impl.build(
        [
            TriggerSpec(scenario.interval, recording_callback(times, scenario.callback_sleep))
            for times in calls
        ]
    )
    await settle(0.1)
    async with anyio.create_task_group() as blocker:
        if scenario.block_loop:
            blocker.start_soon(block_loop, anyio.current_time())
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await impl.start()
        window_end = t0 + scenario.duration + scenario.interval / 2
        await anyio.sleep(max(0.0, window_end - time.perf_counter()))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        blocker.cancel_scope.cancel()

    in_window = [[t for t in times if t < window_end] for times in calls]
    ideal = ideal_calls(scenario.duration, scenario.interval) * scenario.triggers
    delivered = sum(len(times) for times in in_window)
    errors: list[float] = []
    first_call_errors: list[float] = []
    for times in in_window:
        errors += schedule_errors(times, t0, scenario.interval)
        first_call_errors += jitter(times, scenario.interval)
    return {
        "ticks_delivered": delivered,
        "ticks_ideal": ideal,
        "delivered_ratio": delivered / ideal,
        "error": error_summary(errors),
        "first_call_error": error_summary(first_call_errors),
        "cpu_per_s": cpu / wall,
    }


async def measure_scale(impl: Implementation, scenario: ScaleScenario) -> dict[str, Any]:
    """Arm many idle triggers: arming time, memory and idle CPU (the worker times stop).

    Memory per trigger is what the triggers add: the library is imported before the
    baseline (its import is paid once per process, whatever the number of triggers);
    what it sets up on first use (threads, a runtime) is counted.
    """
    specs = [TriggerSpec(scenario.interval, idle_callback) for _ in range(scenario.triggers)]
    impl.load()
    await settle(0.2)
    rss0 = rss_bytes()
    t_build = time.perf_counter()
    impl.build(specs)
    t_start = time.perf_counter()
    await impl.start()
    t_armed = time.perf_counter()

    await settle(scenario.settle)
    rss1 = rss_bytes()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await anyio.sleep(scenario.idle_window)
    idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return {
        "build_s": t_start - t_build,
        "start_s": t_armed - t_start,
        "arm_s": t_armed - t_build,
        "rss_delta_bytes": rss1 - rss0,
        "bytes_per_trigger": (rss1 - rss0) / scenario.triggers,
        "idle_cpu_percent": 100 * idle_cpu,
    }


class _Counter:
    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


async def measure_throughput(impl: Implementation, scenario: ThroughputScenario) -> dict[str, Any]:
    """Count completed calls over ``window`` s after a ``warmup``, and the CPU spent."""
    counter = _Counter()

    async def count(ctx: object) -> None:
        counter.calls += 1

    impl.build([TriggerSpec(scenario.interval, count) for _ in range(scenario.triggers)])
    await settle(0.1)
    await impl.start()
    await anyio.sleep(scenario.warmup)
    calls0, cpu0, wall0 = counter.calls, time.process_time(), time.perf_counter()
    await anyio.sleep(scenario.window)
    calls1, cpu1, wall1 = counter.calls, time.process_time(), time.perf_counter()

    wall = wall1 - wall0
    per_second = (calls1 - calls0) / wall
    cpu_per_s = (cpu1 - cpu0) / wall
    ideal_per_second = scenario.triggers / scenario.interval
    return {
        "window_s": wall,
        "calls_per_s": per_second,
        "delivered_ratio": per_second / ideal_per_second,
        "cpu_per_s": cpu_per_s,
        "calls_per_cpu_s": per_second / cpu_per_s if cpu_per_s > 0 else None,
    }


async def measure(impl: Implementation, scenario: Scenario) -> dict[str, Any]:
    """Build, start and measure ``impl`` under ``scenario``; the caller stops it."""
    if isinstance(scenario, TimingScenario):
        return await measure_timing(impl, scenario)
    if isinstance(scenario, ScaleScenario):
        return await measure_scale(impl, scenario)
    return await measure_throughput(impl, scenario)
