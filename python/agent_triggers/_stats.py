"""``TriggerStats``: what ``runner.stats()`` shows of each trigger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

TriggerKind = Literal["every", "cron", "after", "at", "on_file_change", "coroutine"]
TriggerState = Literal["idle", "running", "paused", "finished", "failed"]


@dataclass(frozen=True)
class TriggerStats:
    """A snapshot of one trigger of a runner (``runner.stats()``).

    Counts are over the runner's life (a stop and a new start do not reset them);
    a trigger removed takes its figures with it.
    """

    name: str
    kind: TriggerKind
    """``"every"``, ``"cron"``, ``"after"``, ``"at"``, ``"on_file_change"``, or
    ``"coroutine"`` (a ``Trigger`` instance or an async callable)."""
    state: TriggerState
    """``"paused"`` while paused (a call under way finishes meanwhile); ``"running"``
    while a call (a coroutine trigger: its task) runs; ``"finished"`` once a
    coroutine trigger returned (or was removed) or a one-shot made its call;
    ``"failed"`` once a coroutine trigger raised; else ``"idle"``."""
    calls: int
    """Calls started: scheduled ticks, events, ``run_now`` calls (a coroutine
    trigger: one per start)."""
    failures: int
    """Calls that raised (a cancellation by ``stop()``/``remove()`` is not one)."""
    consecutive_failures: int
    """Failures since the last call that did not fail (or ``resume()``)."""
    skipped: int
    """Ticks that came due and made no call: overrun, paused, or a fleet's skip."""
    last_call_at: dt.datetime | None
    """When the last call started (aware, UTC)."""
    next_call_at: dt.datetime | None
    """When the next scheduled call is due (aware, UTC); ``None`` when none is
    (paused, not started, a file watch or a coroutine trigger, a one-shot done)."""
    lateness_p50: float | None
    """Seconds a scheduled call started after its due time: the median; ``None``
    before the first scheduled call (``run_now`` calls and file changes have no due time)."""
    lateness_p99: float | None
    lateness_max: float | None
    last_error: str | None
    """The last failure, as ``"ValueError: message"``; ``None`` if none."""
