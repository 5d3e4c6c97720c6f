"""One replica of a fleet, as its own process, for the multi-process tests.

    python fleet_replica.py URL OUT --replica NAME --keys N --interval S
                            [--claim-ttl S] [--on-unavailable skip|run]

Runs ``N`` keyed ``every(S)`` triggers (keys ``k0``...) under a runner with a
``RedisFleet``. Each call appends one line ``"<replica> <key> <scheduled_at ns>"``
to ``OUT`` with a single unbuffered ``write`` (``O_APPEND``), so a replica killed
loses nothing it had already written. Prints ``ready`` once started; on SIGTERM
stops the runner (giving back its unrun claims) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import datetime, timezone

import agent_triggers as at
from agent_triggers._core import PeriodicTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Quiet:
    async def send_trigger(self, content: str) -> None:
        pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--replica", required=True)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--claim-ttl", type=float, default=None)
    parser.add_argument("--on-unavailable", default="skip")
    args = parser.parse_args()
    out = os.open(args.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(key: str) -> PeriodicTrigger:
        async def call(ctx: at.TriggerContext) -> None:
            due = ctx.scheduled_at
            assert due is not None
            delta = due - EPOCH
            nanos = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
            os.write(out, f"{args.replica} {key} {nanos}\n".encode())

        return at.every(args.interval, call, key=key, name=key)

    fleet = at.RedisFleet(
        args.url,
        replica=args.replica,
        claim_ttl=args.claim_ttl,
        on_unavailable=args.on_unavailable,
    )
    runner = at.TriggerRunner([record(f"k{i}") for i in range(args.keys)], Quiet(), fleet=fleet)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await runner.start()
    print("ready", flush=True)
    await stopping.wait()
    await runner.stop()
    os.close(out)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
