"""Background triggers for Python agents, with a Rust (tokio) core.

Long-lived tasks that push messages into an agent's connection: on a precise
interval (``every``), on a cron schedule (``cron``), once (``after``, ``at``), on
a file change (``on_file_change``), or on any event a coroutine of yours waits for. Timing,
task handles and abort-on-drop live in Rust; Python sees a small async API, on
asyncio or trio (whichever awaits ``start()``), that is a drop-in for
``google.antigravity.triggers``.
"""

from agent_triggers._core import (
    AlreadyStartedError,
    RedisFleet,
    TriggerContext,
    TriggerRunner,
    __version__,
    after,
    at,
    cron,
    every,
    on_file_change,
)
from agent_triggers._delivery import TriggerDelivery
from agent_triggers._file_change import FileChange, FileChangeKind
from agent_triggers._stats import TriggerStats
from agent_triggers._trigger import Trigger, trigger

__all__ = [
    "AlreadyStartedError",
    "FileChange",
    "FileChangeKind",
    "RedisFleet",
    "Trigger",
    "TriggerContext",
    "TriggerDelivery",
    "TriggerRunner",
    "TriggerStats",
    "__version__",
    "after",
    "at",
    "cron",
    "every",
    "on_file_change",
    "trigger",
]
