"""How late calendar triggers call: cron on the second, and one-shots.

    python benchmarks/calendar_lateness.py [--rounds 3] [--seconds 10]

Each implementation runs in its own process, the rounds interleaved. For cron, a
``* * * * * *`` schedule (every second, on the second) runs for ``--seconds``; each
call's lateness is the wall clock's distance at the callback's entry from the nearest
whole second (a call early by a hair counts as that, not as a second late).
For one-shots, 20 ``after(delay)`` triggers with delays 50 ms apart; each call's
lateness is ``perf_counter()`` at entry minus ``start + delay``. Printed: per
implementation, the median over rounds of p50 / p99 / max lateness (ms), with the
spread [min-max] across rounds.

Implementations: ``agent_triggers`` (``cron``, ``after``), ``apscheduler3``
(``CronTrigger(second="*")``, ``DateTrigger``) and ``careful_asyncio`` (a task that
sleeps on ``loop.time()`` to the next whole second / to its deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

ONE_SHOTS = 20
SPACING = 0.050
IMPLEMENTATIONS = ("agent_triggers", "careful_asyncio", "apscheduler3")


# --- one run, in a worker process -------------------------------------------------------


async def cron_lateness(impl: str, seconds: float) -> list[float]:
    """Seconds between each call and its whole second, for ``seconds`` of calls."""
    late: list[float] = []

    def record() -> None:
        now = time.time()
        late.append(abs(now - round(now)))  # a call a hair early counts as early, not late

    if impl == "agent_triggers":
        from agent_triggers import TriggerDelivery, TriggerRunner, cron

        async def call(ctx: Any) -> None:
            record()

        runner = TriggerRunner(
            [cron("* * * * * *", call, delivery=TriggerDelivery.SEND_IMMEDIATELY)], _Null()
        )
        async with runner:
            await asyncio.sleep(seconds)
    elif impl == "apscheduler3":
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger

        async def job() -> None:
            record()

        scheduler = AsyncIOScheduler()
        scheduler.add_job(job, CronTrigger(second="*"), misfire_grace_time=3600)
        scheduler.start()
        await asyncio.sleep(seconds)
        scheduler.shutdown(wait=False)
    else:

        async def careful() -> None:
            while True:
                wall = time.time()
                due = math.floor(wall) + 1
                await asyncio.sleep(due - wall)
                record()

        task = asyncio.create_task(careful())
        await asyncio.sleep(seconds)
        task.cancel()
    return late


async def one_shot_lateness(impl: str) -> list[float]:
    """Seconds each of ``ONE_SHOTS`` one-shots came after its deadline."""
    late: list[float] = []
    delays = [SPACING * (k + 1) for k in range(ONE_SHOTS)]

    def recorder(due: list[float], delay: float) -> Any:
        async def call(*_: Any) -> None:
            late.append(time.perf_counter() - (due[0] + delay))

        return call

    origin: list[float] = [0.0]
    if impl == "agent_triggers":
        from agent_triggers import TriggerDelivery, TriggerRunner, after

        immediately = TriggerDelivery.SEND_IMMEDIATELY
        runner = TriggerRunner(
            [after(d, recorder(origin, d), delivery=immediately) for d in delays], _Null()
        )
        origin[0] = time.perf_counter()
        async with runner:
            await asyncio.sleep(delays[-1] + 0.2)
    elif impl == "apscheduler3":
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.date import DateTrigger

        scheduler = AsyncIOScheduler()
        scheduler.start()
        origin[0] = time.perf_counter()
        now = datetime.now(timezone.utc)
        for d in delays:
            when = DateTrigger(run_date=now + timedelta(seconds=d))
            scheduler.add_job(recorder(origin, d), when, misfire_grace_time=3600)
        await asyncio.sleep(delays[-1] + 0.2)
        scheduler.shutdown(wait=False)
    else:
        loop = asyncio.get_running_loop()

        async def at(delay: float, call: Any, start: float) -> None:
            await asyncio.sleep(start + delay - loop.time())
            await call()

        origin[0] = time.perf_counter()
        start = loop.time()
        tasks = [asyncio.create_task(at(d, recorder(origin, d), start)) for d in delays]
        await asyncio.gather(*tasks)
    return late


class _Null:
    async def send_trigger(self, content: str) -> None:
        pass


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}


async def worker(impl: str, seconds: float) -> dict[str, Any]:
    cron = await cron_lateness(impl, seconds)
    shots = await one_shot_lateness(impl)
    return {"cron": summary(cron), "cron_calls": len(cron), "after": summary(shots)}


# --- the rounds -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args.seconds))))
        return

    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLEMENTATIONS}
    for round_index in range(args.rounds):
        order = IMPLEMENTATIONS[round_index % 3 :] + IMPLEMENTATIONS[: round_index % 3]
        for impl in order:
            command = [sys.executable, __file__, "--worker", impl, "--seconds", str(args.seconds)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[impl].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"round {round_index + 1}: {impl} done", file=sys.stderr)

    print("| lateness, ms | " + " | ".join(IMPLEMENTATIONS) + " |")
    print("|---|" + "---|" * len(IMPLEMENTATIONS))
    for what in ("cron", "after"):
        for q in ("p50", "p99", "max"):
            cells = [_spread([run[what][q] for run in runs[impl]]) for impl in IMPLEMENTATIONS]
            print(f"| {what} {q} | " + " | ".join(cells) + " |")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


if __name__ == "__main__":
    main()
