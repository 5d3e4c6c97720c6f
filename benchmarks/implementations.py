"""The four periodic-trigger implementations compared, behind one interface.

Each is armed the same way — ``build(specs)`` then ``await start()`` — and stopped with
``await stop()``, which returns once no callback can run any more. Each imports its own
library lazily (``load()``), so a worker process loads only the implementation it measures.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar

Callback = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class TriggerSpec:
    """One periodic trigger: ``await callback(ctx)`` every ``interval`` seconds."""

    interval: float
    callback: Callback


class NullConnection:
    """The trivial agent connection: accepts a message and does nothing with it."""

    async def send_trigger(self, content: str) -> None:
        pass


class PeerContext:
    """What the peers hand their callbacks in place of a ``TriggerContext``."""

    def __init__(self, connection: NullConnection) -> None:
        self.connection = connection


class Implementation(ABC):
    """A way to run periodic triggers on the running host (asyncio's loop, or trio)."""

    name: ClassVar[str]
    description: ClassVar[str]
    host: ClassVar[str] = "asyncio"  # what the worker runs it under: "asyncio" or "trio"

    def load(self) -> None:
        """Import the library: a cost paid once per process, not per trigger, so the
        scale scenarios call it before their memory baseline (the asyncio and trio
        peers need nothing beyond what the worker has imported). What a library sets
        up on first use is still counted: ours starts its tokio runtime and timer
        thread with the first runner (~0.6 MB, ~12 B a trigger at 50,000)."""
        return None

    @abstractmethod
    def build(self, specs: Sequence[TriggerSpec]) -> None:
        """Prepare the triggers without starting them (synchronous)."""

    @abstractmethod
    async def start(self) -> None:
        """Start every trigger; the first call is due one interval from now."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every trigger; returns once none of their callbacks is running."""


class AgentTriggers(Implementation):
    name = "agent_triggers"
    description = "TriggerRunner([every(interval, cb, delivery=SEND_IMMEDIATELY), ...])"

    def load(self) -> None:
        import agent_triggers  # noqa: F401

    def build(self, specs: Sequence[TriggerSpec]) -> None:
        from agent_triggers import TriggerDelivery, TriggerRunner, every

        immediately = TriggerDelivery.SEND_IMMEDIATELY
        self._runner = TriggerRunner(
            [every(spec.interval, spec.callback, delivery=immediately) for spec in specs],
            NullConnection(),
        )

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()


class AgentTriggersTrio(AgentTriggers):
    name = "agent_triggers_trio"
    description = "the same TriggerRunner, started under trio.run"
    host = "trio"


class _TaskPerTrigger(Implementation):
    """Shared by the plain-asyncio peers: one task per trigger, cancelled on stop."""

    def build(self, specs: Sequence[TriggerSpec]) -> None:
        self._specs = specs
        self._ctx = PeerContext(NullConnection())
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        self._tasks = [
            loop.create_task(self._run(spec.interval, spec.callback, origin))
            for spec in self._specs
        ]
        # Let every task reach its first sleep, so that "armed" means armed.
        await asyncio.sleep(0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @abstractmethod
    async def _run(self, interval: float, callback: Callback, origin: float) -> None:
        """One trigger's loop; ``origin`` is the loop time ``start()`` was called at."""


class SleepLoop(_TaskPerTrigger):
    name = "sleep_loop"
    description = "while True: await asyncio.sleep(interval); await cb(ctx)"

    async def _run(self, interval: float, callback: Callback, origin: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await callback(self._ctx)


class CarefulAsyncio(_TaskPerTrigger):
    name = "careful_asyncio"
    description = "fixed rate on loop.time(): sleep until origin + k*interval, skip missed"

    async def _run(self, interval: float, callback: Callback, origin: float) -> None:
        loop = asyncio.get_running_loop()
        k = 1
        while True:
            await asyncio.sleep(max(0.0, origin + k * interval - loop.time()))
            await callback(self._ctx)
            # The next grid point still ahead: ticks missed while late are skipped.
            k = max(k + 1, math.floor((loop.time() - origin) / interval) + 1)


class CarefulTrio(Implementation):
    name = "careful_trio"
    description = "fixed rate on trio.current_time(): sleep_until origin + k*interval, skip missed"
    host = "trio"

    def build(self, specs: Sequence[TriggerSpec]) -> None:
        self._specs = specs
        self._ctx = PeerContext(NullConnection())

    async def start(self) -> None:
        import trio

        # A nursery in a system task, as a runner would keep one: start() returns
        # with every trigger's task made; stop() cancels the nursery and waits.
        self._stopped = trio.Event()
        self._scope = trio.CancelScope()
        origin = trio.current_time()
        trio.lowlevel.spawn_system_task(self._main, origin)
        await trio.lowlevel.checkpoint()

    async def _main(self, origin: float) -> None:
        import trio

        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    for spec in self._specs:
                        nursery.start_soon(self._run, spec.interval, spec.callback, origin)
        finally:
            self._stopped.set()

    async def _run(self, interval: float, callback: Callback, origin: float) -> None:
        import trio

        k = 1
        while True:
            await trio.sleep_until(origin + k * interval)
            await callback(self._ctx)
            # The next grid point still ahead: ticks missed while late are skipped.
            k = max(k + 1, math.floor((trio.current_time() - origin) / interval) + 1)

    async def stop(self) -> None:
        self._scope.cancel()
        await self._stopped.wait()


class APScheduler3(Implementation):
    name = "apscheduler3"
    description = "AsyncIOScheduler + IntervalTrigger (coalesce, max_instances=1)"

    def load(self) -> None:
        import importlib

        for module in ("apscheduler.schedulers.asyncio", "apscheduler.triggers.interval"):
            importlib.import_module(module)

    def build(self, specs: Sequence[TriggerSpec]) -> None:
        import logging

        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        # Under overload APScheduler logs a warning per skipped or late run; the
        # benchmark counts those itself, and logging them would only add load.
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        self._specs = specs
        self._ctx = PeerContext(NullConnection())
        self._scheduler = AsyncIOScheduler(timezone=timezone.utc)

    async def start(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        # One grid for all jobs, as for the other implementations: the first run one
        # interval after start. Jobs are added before the scheduler starts, as a
        # wake-up per job added to a running AsyncIOScheduler would cost O(n) each.
        now = datetime.now(timezone.utc)
        for spec in self._specs:
            interval = timedelta(seconds=spec.interval)
            self._scheduler.add_job(
                spec.callback,
                IntervalTrigger(seconds=spec.interval, start_date=now + interval),
                args=(self._ctx,),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )
        self._scheduler.start()

    async def stop(self) -> None:
        # AsyncIOScheduler.shutdown() only schedules the shutdown on the loop (the
        # sleep lets it run) and cancels the job tasks without waiting for them.
        self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        jobs = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*jobs, return_exceptions=True)


IMPLEMENTATIONS: dict[str, type[Implementation]] = {
    impl.name: impl
    for impl in (
        AgentTriggers,
        SleepLoop,
        CarefulAsyncio,
        APScheduler3,
        AgentTriggersTrio,
        CarefulTrio,
    )
}
