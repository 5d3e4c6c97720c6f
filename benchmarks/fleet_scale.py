"""A fleet at scale: many keyed triggers at 1 s across several replica processes,
against a real redis-server, beside the same call load run locally (no fleet).

    python benchmarks/fleet_scale.py                       # 10,000 keys x 3 replicas
    python benchmarks/fleet_scale.py --keys 2000 --seconds 10 --rounds 2

Each round, interleaved: ``fleet`` — every replica holds all ``--keys`` keyed
``every(1)`` triggers under one ``RedisFleet`` (so each runs about a third of
the ticks); ``local`` — every replica holds ``keys / replicas`` unkeyed
``every(1)`` triggers and no fleet (the same calls per process, no Redis).
Measured over ``--seconds`` after a warm-up: ticks run (duplicates and misses
by key and instant, fleet only), Redis commands per tick (``INFO
commandstats``), CPU seconds per replica per second, lateness of each call
(start - ``ctx.scheduled_at``; p50/p99/max). Medians over rounds, with min-max.

Note what differs besides Redis: fleet ticks are spread over the second by
their keys' phases; local triggers started together all fall due at once (a
burst of ``keys / replicas`` calls each second), which is what a local
runner's lateness measures here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- one replica (this script, run with --replica) ---


class Quiet:
    async def send_trigger(self, content: str) -> None:
        pass


async def replica(args: argparse.Namespace) -> dict[str, Any]:
    import agent_triggers as at

    calls: list[tuple[str, int, float]] = []  # (key, scheduled_at µs, lateness s)
    measuring = False

    def trigger(key: str) -> Any:
        async def call(ctx: at.TriggerContext) -> None:
            if measuring:
                due = ctx.scheduled_at
                assert due is not None
                now = time.time()
                delta = due - EPOCH
                micros = (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
                calls.append((key, micros, now - micros / 1e6))

        if args.mode == "fleet":
            return at.every(1, call, key=key, name=key)
        return at.every(1, call, name=key)

    if args.mode == "fleet":
        keys = [f"k{i}" for i in range(args.keys)]
        fleet = at.RedisFleet(args.url, replica=args.name)
    else:
        share = args.keys // args.replicas
        keys = [f"{args.name}-{i}" for i in range(share)]
        fleet = None
    runner = at.TriggerRunner([trigger(k) for k in keys], Quiet(), fleet=fleet)
    loop = asyncio.get_running_loop()
    go = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    await runner.start()
    print("ready", flush=True)
    await go.wait()
    measuring = True
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(args.seconds)
    measuring = False
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    await runner.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"calls": calls, "cpu_per_s": cpu / wall, "rss_mib": rss_kib / 1024}


# --- the driver ---


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_cli(port: int, *command: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *command], check=True, capture_output=True, text=True
    ).stdout


def commands_total(port: int) -> int:
    total = 0
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            fields = dict(part.split("=") for part in line.split(":", 1)[1].split(","))
            total += int(fields["calls"])
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_round(mode: str, args: argparse.Namespace, port: int, work: Path) -> dict[str, float]:
    procs: list[subprocess.Popen[str]] = []
    outs = [work / f"{mode}-{i}.json" for i in range(args.replicas)]
    for i, out in enumerate(outs):
        command = [sys.executable, __file__, "--replica", "--mode", mode, "--name", f"r{i}"]
        command += ["--url", f"redis://127.0.0.1:{port}/0", "--out", str(out)]
        command += ["--keys", str(args.keys), "--replicas", str(args.replicas)]
        command += ["--seconds", str(args.seconds)]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        time.sleep(args.warmup)
        before = commands_total(port)
        for proc in procs:
            proc.send_signal(signal.SIGUSR1)
        time.sleep(args.seconds)
        commands = commands_total(port) - before
        for proc in procs:
            proc.wait(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    results = [json.loads(out.read_text()) for out in outs]
    calls = [tuple(call) for result in results for call in result["calls"]]
    lateness = [call[2] for call in calls]
    seen: dict[tuple[str, int], int] = {}
    for key, due, _ in calls:
        seen[(key, due)] = seen.get((key, due), 0) + 1
    row = {
        "ticks": float(len(seen)),
        "ticks_per_s": len(seen) / args.seconds,
        "duplicates": float(sum(n - 1 for n in seen.values())),
        "late_p50_ms": percentile(lateness, 0.50) * 1e3,
        "late_p99_ms": percentile(lateness, 0.99) * 1e3,
        "late_max_ms": max(lateness) * 1e3,
        "cpu_per_replica": statistics.mean(r["cpu_per_s"] for r in results),
        "rss_mib_per_replica": statistics.mean(r["rss_mib"] for r in results),
        "redis_commands_per_tick": commands / max(1, len(seen)),
    }
    if mode == "fleet":
        # Misses: for each key, instants within the window's whole seconds with no call.
        by_key: dict[str, list[int]] = {}
        for key, due in seen:
            by_key.setdefault(key, []).append(due)
        misses = 0
        for dues in by_key.values():
            dues.sort()
            misses += sum((b - a) // 1_000_000 - 1 for a, b in zip(dues, dues[1:]))
        row["misses"] = float(misses)
        row["keys_seen"] = float(len(by_key))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replica", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="fleet", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="r0", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.replica:
        Path(args.out).write_text(json.dumps(asyncio.run(replica(args))))
        return
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not on PATH (scripts/ensure-redis-server installs it)")
    port = free_port()
    redis = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        while (
            subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True).stdout[:4]
            != b"PONG"
        ):
            time.sleep(0.05)
        rows: dict[str, list[dict[str, float]]] = {"fleet": [], "local": []}
        with tempfile.TemporaryDirectory() as work:
            for round_ in range(args.rounds):
                for mode in ("fleet", "local") if round_ % 2 == 0 else ("local", "fleet"):
                    row = one_round(mode, args, port, Path(work))
                    rows[mode].append(row)
                    print(f"round {round_ + 1} {mode}: {json.dumps(row)}", flush=True)
        cpu_redis = redis_cli(port, "INFO", "cpu")
    finally:
        redis.send_signal(signal.SIGTERM)
        redis.wait()
    print(
        f"\n{args.keys:,} keyed triggers at 1 s, {args.replicas} replicas, "
        f"{args.seconds:g} s x {args.rounds} rounds (median [min-max]):"
    )
    for mode, results in rows.items():
        print(f"  {mode}:")
        for field in results[0]:
            values = [r[field] for r in results]
            print(
                f"    {field:24} {statistics.median(values):10.3f}"
                f"  [{min(values):.3f}-{max(values):.3f}]"
            )
    used = [line for line in cpu_redis.splitlines() if line.startswith("used_cpu")]
    print("  redis-server (whole run): " + ", ".join(used))
    print(f"  machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
