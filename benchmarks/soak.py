"""Soak: many fast triggers for a minute — no tick lost beyond skip semantics, memory flat.

    python benchmarks/soak.py [--seconds 60] [--triggers 200] [--interval 0.01]
                              [--kind every|python] [--rss-limit-mb 4]

``--kind every`` (the default) runs ``triggers`` x ``every(interval, callback)`` on one
``TriggerRunner``; each callback notes its call and awaits ``ctx.send(...)`` into a
connection that does nothing. Every call is checked against the trigger's schedule as
it happens (nothing per call is kept, so the bookkeeping does not grow the memory it
watches):

- tick ``k`` is due at ``t0 + k·interval``, ``t0`` taken just before ``start()``;
- **skipped**: ticks not delivered because a call came late. As in the core's
  ``next_due`` (``rust/core/src/ticker.rs``), a call ``≥ min(5 ms, interval)`` late is
  followed by the first grid point after it: the grid points it was late past are
  skipped, never burst. A tick is counted skipped only behind a late call;
- **lost**: ticks of the window neither delivered nor skipped — what must be 0;
- **early**: calls before their due time, **overlaps**: a call entered while the
  same trigger's previous one had not returned — both must be 0.

From call times alone, a tick dropped before an on-time call looks the same as a late
call followed by a skip; so the report also gives the number of calls late by a whole
interval or more, the lateness distribution, and the loop's own lag (how late a plain
``asyncio.sleep`` wakes) to judge the skips by.

The window is ``seconds`` long (``floor(seconds / interval)`` ticks per trigger); calls
for ticks due in it still count if they come within a grace period after it.

``--kind python`` runs Python async triggers that loop ``await asyncio.sleep(interval)``
then send: a sleep loop drifts by design (each period is the interval plus the loop's
own time), so it has no grid to lose ticks from. It reports calls against the ideal and
checks that every trigger is still calling at the end, and memory.

Resident memory is sampled every 5 s; after the warm-up (the first ``min(10 s,
seconds/4)``) it may grow at most ``--rss-limit-mb``. Exit status 1 if a tick was lost,
a call came early or overlapped, a Python trigger stopped calling, or memory grew
beyond the limit; else 0. Not part of ``make test`` or ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata

from agent_triggers import TriggerContext, TriggerDelivery, TriggerRunner, every
from agent_triggers._core import PeriodicTrigger

# A call this late (or the interval, if shorter) is followed by the first grid point
# after it: the core's `MISSED` (rust/core/src/ticker.rs).
MISSED = 0.005
# Calls more than this before their due time count as early (clock noise only: t0 is
# taken before start(), so the true grid is, if anything, later than the one used here).
EARLY_TOLERANCE = 0.0002
RSS_EVERY = 5.0
# The first min(WARMUP_MAX, seconds/4) seconds: allocator arenas and caches reach their
# working size; RSS growth is measured from the first sample after it.
WARMUP_MAX = 10.0


TriggerFunction = Callable[[TriggerContext], Awaitable[None]]


class NullConnection:
    """The trivial agent connection: accepts a message and does nothing with it."""

    async def send_trigger(self, content: str) -> None:
        pass


class Histogram:
    """Fixed bins (0.05 ms up to 100 ms, then one overflow bin): constant memory."""

    WIDTH = 0.00005
    BINS = 2000

    def __init__(self) -> None:
        self.counts = [0] * (self.BINS + 1)
        self.total = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        index = min(max(int(seconds / self.WIDTH), 0), self.BINS)
        self.counts[index] += 1
        self.total += 1
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """The upper edge of the bin holding the ``q`` quantile (seconds)."""
        if self.total == 0:
            return math.nan
        rank = q * (self.total - 1)
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen > rank:
                return self.max if index == self.BINS else (index + 1) * self.WIDTH
        return self.max


class Tally:
    """One periodic trigger's calls, checked against its schedule as they come."""

    __slots__ = (
        "busy",
        "calls",
        "early",
        "index",
        "interval",
        "last_late",
        "last_skipped",
        "late_calls",
        "lateness",
        "missed_after",
        "origin",
        "overlaps",
        "skipped",
        "window",
    )

    def __init__(self, interval: float, window: int) -> None:
        self.interval = interval
        self.window = window  # ticks 1..window are counted
        self.missed_after = min(MISSED, interval)
        self.origin = 0.0
        self.index = 1  # the tick the next call is expected for
        self.calls = 0
        self.skipped = 0
        self.last_skipped = 0
        self.last_late = False
        self.early = 0
        self.late_calls = 0  # calls a whole interval late or more: each skipped ticks
        self.overlaps = 0
        self.busy = False
        self.lateness = Histogram()

    def _in_window(self, first: int, count: int) -> int:
        """How many of the ticks ``first .. first+count-1`` are in the window."""
        return max(0, min(first + count - 1, self.window) - first + 1)

    def call(self, now: float) -> None:
        index = self.index
        due = self.origin + index * self.interval
        if now < due and self.last_skipped:
            # The last call was counted a hair later than the core saw it launch (its
            # entry here comes after the launch): it skipped fewer ticks than counted.
            # No call comes before its tick (this grid starts before the core's), so
            # any call before `due` here is for an earlier one — also within
            # EARLY_TOLERANCE of it: counted as on time for this tick, it put every
            # later call of the trigger one tick ahead, as early.
            back = min(self.last_skipped, math.ceil((due - now) / self.interval))
            index -= back
            self.skipped -= self._in_window(index, back)
            self.last_skipped -= back
            if self.last_skipped == 0 and self.last_late:
                self.late_calls -= 1  # not late by a whole interval after all
            due = self.origin + index * self.interval
        if now < due - EARLY_TOLERANCE:
            self.early += 1
        late = now - due
        behind = int(late // self.interval) if late >= self.missed_after else 0
        self.last_late = index <= self.window and behind > 0
        if index <= self.window:
            self.calls += 1
            self.lateness.add(late)
            self.late_calls += self.last_late
        self.skipped += self._in_window(index + 1, behind)
        self.last_skipped = behind
        self.index = index + behind + 1

    @property
    def lost(self) -> int:
        return self.window - self.calls - self.skipped


class Counter:
    """A sleep-loop trigger's calls: how many in the window, and the last one's time."""

    __slots__ = ("calls", "end", "last")

    def __init__(self) -> None:
        self.end = math.inf  # the window's end (perf_counter)
        self.calls = 0
        self.last = 0.0


def periodic_callback(tally: Tally) -> TriggerFunction:
    async def callback(ctx: TriggerContext) -> None:
        if tally.busy:
            tally.overlaps += 1
        tally.busy = True
        try:
            tally.call(time.perf_counter())
            await ctx.send("tick")
        finally:
            tally.busy = False

    return callback


def sleep_loop_trigger(counter: Counter, interval: float) -> TriggerFunction:
    async def sleeps_in_a_loop(ctx: TriggerContext) -> None:
        while True:
            await asyncio.sleep(interval)
            counter.last = time.perf_counter()
            if counter.last <= counter.end:
                counter.calls += 1
            await ctx.send("tick")

    return sleeps_in_a_loop


def rss_bytes() -> int:
    """Resident memory now: /proc on Linux, else psutil (the bench extras) if present."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil  # type: ignore[import-untyped, unused-ignore]

        return int(psutil.Process().memory_info().rss)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    """What one soak measured."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.start_s = 0.0
        self.stop_s = 0.0
        self.cpu_s = 0.0
        self.rss: list[tuple[float, int]] = []  # (seconds since t0, bytes)
        self.objects: tuple[int, int] = (0, 0)  # gc-tracked objects after the warm-up, at the end
        self.tallies: list[Tally] = []
        self.counters: list[Counter] = []
        self.loop_lag = Histogram()
        self.stalls: list[tuple[float, float]] = []  # the worst (lag, seconds since t0)


async def sample_rss(origin: float, run: Run, warmup: float) -> None:
    """RSS at t0 and every RSS_EVERY s after; gc-tracked objects once warm."""
    step = 0
    while True:
        run.rss.append((time.perf_counter() - origin, rss_bytes()))
        step += 1
        if run.objects == (0, 0) and step * RSS_EVERY > warmup:
            gc.collect()
            run.objects = (len(gc.get_objects()), 0)
        await asyncio.sleep(max(0.0, origin + step * RSS_EVERY - time.perf_counter()))


async def probe_loop_lag(origin: float, run: Run, period: float = 0.005) -> None:
    """How late the loop wakes a plain asyncio.sleep: the load the triggers put on it.
    Keeps the five worst stalls, with when they happened."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(period)
        now = time.perf_counter()
        lag = now - asked - period
        run.loop_lag.add(lag)
        if len(run.stalls) < 5 or lag > run.stalls[-1][0]:
            run.stalls = sorted([*run.stalls, (lag, now - origin)], reverse=True)[:5]


async def soak(kind: str, seconds: float, triggers: int, interval: float) -> Run:
    window = math.floor(seconds / interval + 1e-9)
    grace = max(0.5, 20 * interval)
    warmup = min(WARMUP_MAX, seconds / 4)
    run = Run()
    items: list[TriggerFunction | PeriodicTrigger]
    if kind == "every":
        run.tallies = [Tally(interval, window) for _ in range(triggers)]
        immediately = TriggerDelivery.SEND_IMMEDIATELY
        items = [every(interval, periodic_callback(t), delivery=immediately) for t in run.tallies]
    else:
        run.counters = [Counter() for _ in range(triggers)]
        items = [sleep_loop_trigger(c, interval) for c in run.counters]
    runner = TriggerRunner(items, NullConnection())

    cpu = cpu_seconds()
    origin = time.perf_counter()
    for tally in run.tallies:
        tally.origin = origin
    for counter in run.counters:
        counter.end = origin + seconds
    await runner.start()
    run.start_s = time.perf_counter() - origin
    helpers = [
        asyncio.ensure_future(sample_rss(origin, run, warmup)),
        asyncio.ensure_future(probe_loop_lag(origin, run)),
    ]
    await asyncio.sleep(origin + seconds + grace - time.perf_counter())
    run.elapsed = time.perf_counter() - origin
    run.cpu_s = cpu_seconds() - cpu
    run.rss.append((run.elapsed, rss_bytes()))
    for helper in helpers:
        helper.cancel()
    await asyncio.gather(*helpers, return_exceptions=True)
    stopping = time.perf_counter()
    await runner.stop()
    run.stop_s = time.perf_counter() - stopping
    gc.collect()
    run.objects = (run.objects[0], len(gc.get_objects()))
    return run


# --- the report -------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 2**20:.1f}"


def slope_mb_per_min(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    return 0.0 if var == 0 else cov / var * 60 / 2**20


def report(args: argparse.Namespace, run: Run) -> list[str]:
    """Print the summary; return the reasons the soak failed (none: passed)."""
    failures: list[str] = []
    interval, window = args.interval, math.floor(args.seconds / args.interval + 1e-9)
    version = metadata.version("agent-triggers")
    what = "every" if args.kind == "every" else "Python sleep-loop"
    print(
        f"soak: {args.triggers} x {what} trigger @ {interval * 1000:g} ms, "
        f"{args.seconds:g} s (+{run.elapsed - args.seconds:.1f} s grace) — "
        f"agent_triggers {version}, CPython {platform.python_version()}, "
        f"{platform.system()}, {os.cpu_count()} CPUs"
    )
    ideal = window * args.triggers
    if run.tallies:
        delivered = sum(t.calls for t in run.tallies)
        skipped = sum(t.skipped for t in run.tallies)
        lost = sum(t.lost for t in run.tallies)
        early = sum(t.early for t in run.tallies)
        overlaps = sum(t.overlaps for t in run.tallies)
        late_calls = sum(t.late_calls for t in run.tallies)
        lateness = Histogram()
        for t in run.tallies:
            lateness.merge(t.lateness)
        per = sorted(t.calls for t in run.tallies)
        rows = [
            ("ticks due", f"{ideal:,} ({window:,} per trigger)"),
            (
                "delivered",
                f"{delivered:,} ({delivered / ideal:.4%}); per trigger {per[0]:,}..{per[-1]:,}",
            ),
            (
                "skipped",
                f"{skipped:,} ({skipped / ideal:.4%}), behind {late_calls:,} calls "
                f"late by an interval or more",
            ),
            ("lost", f"{lost:,}"),
            ("early / overlaps", f"{early:,} / {overlaps:,}"),
            (
                "lateness",
                f"p50 {lateness.quantile(0.5) * 1e3:.2f} ms, "
                f"p99 {lateness.quantile(0.99) * 1e3:.2f} ms, max {lateness.max * 1e3:.1f} ms",
            ),
        ]
        if lost:
            failures.append(f"{lost:,} ticks lost beyond skip semantics")
        if early or overlaps:
            failures.append(f"{early:,} early calls, {overlaps:,} overlapping calls")
    else:
        delivered = sum(c.calls for c in run.counters)
        per = sorted(c.calls for c in run.counters)
        end = max(c.last for c in run.counters) if run.counters else 0.0
        stale = [c for c in run.counters if end - c.last > max(1.0, 50 * interval)]
        rows = [
            ("ideal calls", f"{ideal:,} ({window:,} per trigger; a sleep loop drifts)"),
            (
                "delivered",
                f"{delivered:,} ({delivered / ideal:.2%}); per trigger {per[0]:,}..{per[-1]:,}",
            ),
            ("stalled", f"{len(stale)} trigger(s) silent for the last second"),
        ]
        if stale:
            failures.append(f"{len(stale)} Python trigger(s) stopped calling")

    lag = run.loop_lag
    rows.append(
        (
            "loop lag",
            f"p50 {lag.quantile(0.5) * 1e3:.2f} ms, p99 {lag.quantile(0.99) * 1e3:.2f} ms, "
            f"max {lag.max * 1e3:.1f} ms (asyncio.sleep(5 ms) overshoot)",
        )
    )
    worst = ", ".join(f"{lag * 1e3:.0f} ms at {when:.1f} s" for lag, when in run.stalls)
    rows.append(("worst stalls", worst))
    warmup = min(WARMUP_MAX, args.seconds / 4)
    warm = [(t, r) for t, r in run.rss if t >= warmup] or run.rss[-1:]
    growth = warm[-1][1] - warm[0][1]
    rows += [
        (
            "RSS MB",
            f"first {mb(run.rss[0][1])}, after warm-up {mb(warm[0][1])}, "
            f"last {mb(run.rss[-1][1])}, max {mb(max(r for _, r in run.rss))}",
        ),
        (
            "RSS growth",
            f"{growth / 2**20:+.2f} MB after {warmup:g} s warm-up (limit {args.rss_limit_mb:g}); "
            f"slope {slope_mb_per_min(warm):+.3f} MB/min",
        ),
        ("RSS samples", " ".join(mb(r) for _, r in run.rss)),
        ("gc objects", f"{run.objects[0]:,} after warm-up, {run.objects[1]:,} at the end"),
        ("CPU", f"{run.cpu_s:.1f} s ({run.cpu_s / run.elapsed:.2f} CPU s/s)"),
        ("start / stop", f"{run.start_s * 1e3:.1f} ms / {run.stop_s * 1e3:.1f} ms"),
    ]
    if growth > args.rss_limit_mb * 2**20:
        failures.append(f"RSS grew {growth / 2**20:.2f} MB after warm-up")

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="window length (default 60)")
    parser.add_argument("--triggers", type=int, default=200, help="how many triggers (default 200)")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds (default 0.01)")
    parser.add_argument("--kind", choices=["every", "python"], default="every")
    parser.add_argument(
        "--rss-limit-mb",
        type=float,
        default=4.0,
        help="RSS growth allowed after the warm-up, MB (default 4)",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.triggers <= 0 or args.interval <= 0:
        parser.error("--seconds, --triggers and --interval must be positive")
    run = asyncio.run(soak(args.kind, args.seconds, args.triggers, args.interval))
    return 1 if report(args, run) else 0


if __name__ == "__main__":
    sys.exit(main())
