"""Background triggers for Python agents, with a Rust (tokio) core.

Long-lived tasks that push messages into an agent's connection: on a precise
interval (``every``), or on any event a coroutine of yours waits for. Timing,
task handles and abort-on-drop live in Rust; Python sees a small asyncio API
that is a drop-in for ``google.antigravity.triggers``.
"""

from agent_triggers._core import (
    AlreadyStartedError,
    TriggerContext,
    TriggerRunner,
    __version__,
    every,
)
from agent_triggers._delivery import TriggerDelivery
from agent_triggers._trigger import Trigger, trigger

__all__ = [
    "AlreadyStartedError",
    "Trigger",
    "TriggerContext",
    "TriggerDelivery",
    "TriggerRunner",
    "__version__",
    "every",
    "trigger",
]
