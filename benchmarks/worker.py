"""One measurement in a fresh process: ``python benchmarks/worker.py IMPL SCENARIO``.

Runs SCENARIO (see ``scenarios.SCENARIOS``) against IMPL (see
``implementations.IMPLEMENTATIONS``) on a new asyncio loop (or trio run, for the
trio implementations) and prints its figures on
stdout as one JSON object per line: one with ``"status": "measured"`` as soon as the
figures are in, then the same with ``"status": "ok"`` and ``stop_s`` once the triggers
are stopped — so that a run killed while a slow peer stops still has its figures.
``--triggers N`` runs the scenario with N triggers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from typing import Any

from implementations import IMPLEMENTATIONS, Implementation
from scenarios import SCENARIOS, Scenario, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("scenario", choices=list(SCENARIOS))
    parser.add_argument("--triggers", type=int, help="override the scenario's trigger count")
    args = parser.parse_args()

    scenario = SCENARIOS[args.scenario]
    if args.triggers is not None:
        scenario = dataclasses.replace(scenario, triggers=args.triggers)
    result = {"impl": args.impl, "scenario": args.scenario, "triggers": scenario.triggers}
    impl = IMPLEMENTATIONS[args.impl]()
    if impl.host == "trio":
        import trio

        trio.run(run, impl, scenario, result)
    else:
        asyncio.run(run(impl, scenario, result))


async def run(impl: Implementation, scenario: Scenario, result: dict[str, Any]) -> None:
    started = time.perf_counter()
    figures = await measure(impl, scenario)
    report(result, "measured", figures, started)
    stopping = time.perf_counter()
    await impl.stop()
    figures["stop_s"] = time.perf_counter() - stopping
    report(result, "ok", figures, started)


def report(result: dict[str, Any], status: str, figures: dict[str, Any], started: float) -> None:
    result.update(status=status, figures=figures, worker_s=time.perf_counter() - started)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
