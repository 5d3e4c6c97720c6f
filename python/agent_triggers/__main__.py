"""The demo: ``python -m agent_triggers [--seconds N]``.

A simulated agent alternates busy and idle turns. Five triggers push messages
into it: a heartbeat every second that waits for idle turns, a fast trigger every
0.25 s that sends immediately, a cron "clock" on each wall-clock second, a file
watcher on a temporary folder that receives reports, and a custom coroutine
trigger relaying events from a simulated inbox. Each delivered message is printed
with how late it arrived against its ideal time. Midway the runner is operated
while it runs: a one-shot reminder is added, the fast trigger paused for a second
(its ticks are skipped) and resumed. At the end ``runner.stats()`` is shown as a
table (``--stats``: every second too); the last line sums up.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent_triggers import (
    FileChange,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    TriggerStats,
    after,
    cron,
    every,
    on_file_change,
    trigger,
)

BUSY_TURN = 0.6
IDLE_TURN = 0.9


@dataclass
class SimulatedAgent:
    """A connection whose agent alternates busy turns and idle gaps."""

    started: float = field(default_factory=time.perf_counter)
    delivered: list[tuple[str, float]] = field(default_factory=list[tuple[str, float]])
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def is_idle(self) -> bool:
        return self._idle.is_set()

    async def wait_for_idle(self) -> None:
        await self._idle.wait()

    async def send_trigger(self, content: str) -> None:
        # Mid-turn sends are allowed for SEND_IMMEDIATELY triggers; the agent
        # would fold them into its current turn.
        self.delivered.append((content, time.perf_counter()))

    async def live(self) -> None:
        """Alternate busy and idle turns forever."""
        while True:
            self._idle.clear()
            await asyncio.sleep(BUSY_TURN)
            self._idle.set()
            await asyncio.sleep(IDLE_TURN)


@dataclass
class Report:
    started: float
    worst: dict[str, float] = field(default_factory=dict[str, float])
    count: int = 0

    def delivered(self, source: str, content: str, ideal: float, agent_idle: bool) -> None:
        now = time.perf_counter()
        late_ms = (now - ideal) * 1e3
        self.count += 1
        self.worst[source] = max(self.worst.get(source, 0.0), late_ms)
        state = "idle" if agent_idle else "busy"
        print(
            f"[{now - self.started:7.3f}s] {source:<9} {content!r:<24} "
            f"late {late_ms:8.2f} ms  (agent {state})",
            flush=True,
        )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def stats_table(stats: list[TriggerStats]) -> str:
    """``runner.stats()`` as a table: counts, lateness (ms) and the next call."""
    header = (
        f"{'trigger':<10} {'kind':<15} {'state':<9} {'calls':>5} {'fail':>4} {'skip':>4} "
        f"{'late p50':>9} {'p99':>7} {'max':>7}  next call (UTC)"
    )
    rows = [header, "-" * len(header)]
    for s in stats:
        upcoming = s.next_call_at.strftime("%H:%M:%S.%f")[:-3] if s.next_call_at else "-"
        rows.append(
            f"{s.name:<10} {s.kind:<15} {s.state:<9} {s.calls:>5} {s.failures:>4} "
            f"{s.skipped:>4} {_ms(s.lateness_p50):>9} {_ms(s.lateness_p99):>7} "
            f"{_ms(s.lateness_max):>7}  {upcoming}"
        )
    return "\n".join(rows)


def ideal_tick(started: float, interval: float) -> float:
    """The ideal time of the tick closest to now on the grid ``started + k*interval``."""
    k = max(1, round((time.perf_counter() - started) / interval))
    return started + k * interval


def periodic_message(
    report: Report, source: str, interval: float
) -> Callable[[TriggerContext], Awaitable[None]]:
    """An ``every`` callback delivering ``"<source> #n"`` and reporting its lateness."""
    count = 0

    async def callback(ctx: TriggerContext) -> None:
        nonlocal count
        count += 1
        ideal = ideal_tick(report.started, interval)
        content = f"{source} #{count}"
        await ctx.deliver(content)
        report.delivered(source, content, ideal, ctx.is_idle)

    return callback


async def operate(runner: TriggerRunner, report: Report, seconds: float) -> None:
    """What an operator does while the runner runs: add a one-shot reminder, pause
    the fast trigger for a second (its ticks are skipped, counted), resume it."""

    async def remind(ctx: TriggerContext) -> None:
        await ctx.deliver("reminder")
        report.delivered("reminder", "reminder", time.perf_counter(), ctx.is_idle)

    await asyncio.sleep(seconds * 0.3)
    runner.add(after(0.5, remind, name="reminder", delivery=TriggerDelivery.SEND_IMMEDIATELY))
    print(f"[{time.perf_counter() - report.started:7.3f}s] operator: added 'reminder'", flush=True)
    runner.pause("fast")
    print(f"[{time.perf_counter() - report.started:7.3f}s] operator: paused 'fast'", flush=True)
    await asyncio.sleep(1.0)
    runner.resume("fast")
    print(f"[{time.perf_counter() - report.started:7.3f}s] operator: resumed 'fast'", flush=True)


async def show_stats(runner: TriggerRunner) -> None:
    """Print the stats table every second (``--stats``)."""
    while True:
        await asyncio.sleep(1.0)
        print(stats_table(runner.stats()), flush=True)


async def run(seconds: float, reports_dir: Path, live_stats: bool = False) -> Report:
    agent = SimulatedAgent()
    report = Report(started=time.perf_counter())
    inbox: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    written: dict[str, float] = {}

    async def clock(ctx: TriggerContext) -> None:
        # Due on the wall-clock second; measured against perf_counter like the rest.
        late = time.time() % 1.0
        await ctx.deliver("clock")
        report.delivered("clock", time.strftime("%H:%M:%S"), time.perf_counter() - late, True)

    async def new_reports(ctx: TriggerContext, changes: list[FileChange]) -> None:
        for change in changes:
            name = Path(change.path).name
            if name in written:
                await ctx.deliver(f"{change.kind.value}: {name}")
                report.delivered("files", name, written.pop(name), ctx.is_idle)

    async def reports_arrive() -> None:
        for n in range(1, 1000):
            await asyncio.sleep(random.uniform(0.8, 1.6))
            name = f"report-{n}.txt"
            written[name] = time.perf_counter()
            (reports_dir / name).write_text(f"report {n}")

    @trigger(name="inbox", delivery=TriggerDelivery.WAIT_IDLE)
    async def relay_inbox(ctx: TriggerContext) -> None:
        while True:
            subject, arrived = await inbox.get()
            await ctx.deliver(f"new mail: {subject}")
            report.delivered("inbox", subject, arrived, ctx.is_idle)

    async def mail_arrives() -> None:
        for n in range(1, 1000):
            await asyncio.sleep(random.uniform(0.5, 1.5))
            await inbox.put((f"mail {n}", time.perf_counter()))

    runner = TriggerRunner(
        [
            every(1.0, periodic_message(report, "heartbeat", 1.0), name="heartbeat"),
            every(
                0.25,
                periodic_message(report, "fast", 0.25),
                name="fast",
                delivery=TriggerDelivery.SEND_IMMEDIATELY,
            ),
            cron("* * * * * *", clock, name="clock", delivery=TriggerDelivery.SEND_IMMEDIATELY),
            on_file_change(reports_dir, new_reports, name="files", debounce=0.02),
            relay_inbox,
        ],
        agent,
    )
    background = [
        asyncio.create_task(agent.live()),
        asyncio.create_task(mail_arrives()),
        asyncio.create_task(reports_arrive()),
    ]
    report.started = time.perf_counter()
    async with runner:
        background.append(asyncio.create_task(operate(runner, report, seconds)))
        if live_stats:
            background.append(asyncio.create_task(show_stats(runner)))
        await asyncio.sleep(seconds)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    print(stats_table(runner.stats()), flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_triggers",
        description="Run five triggers against a simulated agent and show their timing.",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument(
        "--stats", action="store_true", help="print runner.stats() as a table every second"
    )
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    print(
        f"agent busy {BUSY_TURN}s / idle {IDLE_TURN}s; heartbeat every 1 s (waits for idle), "
        "fast every 0.25 s (immediate), clock on each second (cron, immediate), "
        "files dropped in a folder (waits for idle), inbox relay (waits for idle)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="agent-triggers-demo-") as reports_dir:
        report = asyncio.run(run(args.seconds, Path(reports_dir), live_stats=args.stats))
    worst = ", ".join(f"{name} {ms:.2f} ms" for name, ms in sorted(report.worst.items()))
    print(
        f"summary: {report.count} messages delivered in {args.seconds:g} s; worst lateness: {worst}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
