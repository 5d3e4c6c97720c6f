"""Type stubs for ``agent_triggers._core``, the native (Rust, PyO3) module."""

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from types import TracebackType
from typing import Any, NoReturn, Protocol, final

from typing_extensions import Self

from agent_triggers._delivery import TriggerDelivery
from agent_triggers._trigger import Trigger

__version__: str

class AlreadyStartedError(RuntimeError):
    """Raised by ``TriggerRunner.start()`` when the runner is already started."""

class _SendTrigger(Protocol):
    async def send_trigger(self, content: str, /) -> None: ...

class _SendTriggerNotification(Protocol):
    async def send_trigger_notification(self, content: str, /) -> None: ...

Connection = _SendTrigger | _SendTriggerNotification
"""Any object with ``async send_trigger(content)`` (or Antigravity's
``send_trigger_notification``); ``is_idle`` and ``async wait_for_idle()`` are optional."""

TriggerCallable = Callable[[TriggerContext], Awaitable[object]]
Interval = int | float | Fraction | Decimal | timedelta

@final
class TriggerContext:
    """Handle given to each trigger: sends messages into the agent."""

    def __init__(self, connection: Connection) -> None: ...
    def send(self, content: str) -> Awaitable[None]:
        """Send ``content`` now, even mid-turn. ``TypeError`` if not a ``str``."""
    def send_when_idle(self, content: str) -> Awaitable[None]:
        """Await ``connection.wait_for_idle()``, then send. Never sends mid-turn."""
    def deliver(self, content: str) -> Awaitable[None]:
        """Send according to the owning trigger's ``delivery``."""
    @property
    def is_idle(self) -> bool:
        """Whether the agent is idle now (``True`` when the connection cannot tell)."""
    @property
    def delivery(self) -> TriggerDelivery:
        """The delivery ``deliver()`` follows."""
    @property
    def connection(self) -> Connection:
        """The connection messages are sent into."""

@final
class TriggerRunner:
    """Owns and runs a set of triggers against one connection."""

    def __init__(
        self,
        triggers: Iterable[TriggerCallable | Trigger | PeriodicTrigger],
        connection: Connection,
    ) -> None: ...
    async def start(self) -> None:
        """Start every trigger; ``AlreadyStartedError`` if started and not stopped."""
    async def stop(self) -> None:
        """Cancel every trigger and return once each has finished its cleanup."""
    @property
    def is_running(self) -> bool:
        """``True`` while any trigger task is still running."""
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> bool: ...

@final
class PeriodicTrigger:
    """A periodic trigger made by ``every()``."""

    @property
    def name(self) -> str: ...
    @property
    def __name__(self) -> str: ...
    @property
    def interval(self) -> float:
        """Seconds between calls."""
    @property
    def delivery(self) -> TriggerDelivery: ...
    @property
    def callback(self) -> Callable[[Any], Awaitable[object]]: ...
    def __call__(self, ctx: Any) -> Awaitable[NoReturn]:
        """A coroutine running the schedule until cancelled."""
    def _ticker(self) -> Ticker: ...

@final
class Ticker:
    """A fixed-rate schedule kept by the Rust runtime."""

    async def tick(self) -> None: ...

def every(
    interval: Interval,
    callback: Callable[[Any], Awaitable[object]],
    *,
    name: str | None = None,
    delivery: TriggerDelivery = TriggerDelivery.WAIT_IDLE,
) -> PeriodicTrigger:
    """A trigger that calls ``await callback(ctx)`` every ``interval`` seconds."""
