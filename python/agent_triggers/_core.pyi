"""Type stubs for ``agent_triggers._core``, the native (Rust, PyO3) module."""

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from os import PathLike
from types import TracebackType
from typing import Any, Literal, NoReturn, Protocol, final
from zoneinfo import ZoneInfo

from typing_extensions import Self, disjoint_base

from agent_triggers._delivery import TriggerDelivery
from agent_triggers._file_change import FileChange
from agent_triggers._stats import TriggerStats
from agent_triggers._trigger import Trigger

__all__ = [
    "AlreadyStartedError",
    "Awaiting",
    "CronTrigger",
    "EventSource",
    "FileChangeTrigger",
    "NativeTrigger",
    "OneShotTrigger",
    "PeriodicTrigger",
    "RedisFleet",
    "TriggerContext",
    "TriggerRunner",
    "TrioServing",
    "__version__",
    "_inject_panic",
    "after",
    "at",
    "cron",
    "delivery_argument",
    "every",
    "on_file_change",
]

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

    def __new__(cls, connection: Connection) -> Self: ...
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
    @property
    def scheduled_at(self) -> datetime | None:
        """During a call of a scheduled trigger (``every``, ``cron``, ``after``, ``at``),
        the aware UTC datetime it was due (for a fleet tick: the same on every
        replica); ``None`` otherwise."""

@final
class RedisFleet:
    """The replicas of one agent service, agreeing in Redis on who runs each tick
    of a keyed trigger. ``repr()``/``str()`` never show the URL's password."""

    def __new__(
        cls,
        url: str,
        *,
        replica: str | None = None,
        claim_ttl: Interval | None = None,
        on_unavailable: Literal["skip", "run"] | None = None,
    ) -> Self: ...
    @property
    def url(self) -> str:
        """The URL, its password (if any) shown as ``***``."""
    @property
    def replica(self) -> str:
        """This replica's name in its claims (default ``"{hostname}:{pid}"``)."""
    @property
    def claim_ttl(self) -> float:
        """Seconds a claim lives in Redis."""
    @property
    def on_unavailable(self) -> Literal["skip", "run"]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: dict[int, Any], /) -> Self: ...
    def __reduce__(self) -> NoReturn:
        """Always raises ``TypeError``: a pickle would carry the password."""

@final
class TriggerRunner:
    """Owns and runs a set of triggers against one connection."""

    def __new__(
        cls,
        triggers: Iterable[TriggerCallable | Trigger | NativeTrigger],
        connection: Connection,
        *,
        fleet: RedisFleet | None = None,
    ) -> Self: ...
    async def start(self) -> None:
        """Start every trigger; ``AlreadyStartedError`` if started and not stopped.

        In a forked child, a runner the parent had started raises ``RuntimeError``
        (see ``stop()``).
        """
    async def stop(self, timeout: Interval | None = None) -> None:
        """Cancel every trigger and return once each has finished its cleanup.

        ``timeout`` (seconds; default ``None``: wait as long as cleanup takes)
        bounds the wait. Past it, ``stop()`` returns, logs a WARNING naming each
        trigger still running, and abandons them: the runner counts as stopped.

        Awaited on another loop than ``start()``'s, it works while that loop runs
        or once it is closed; while that loop is stopped but not closed, with
        Python code of the runner under way there (a coroutine trigger always
        is), it raises ``RuntimeError`` at once and stops nothing.

        In a child made by ``os.fork()``, a runner the parent had started (and not
        stopped) can be neither stopped nor started: ``stop()`` and ``start()``
        raise ``RuntimeError`` at once. Its triggers run in the parent, on threads
        the child does not have; the child makes a runner of its own instead.
        """
    @property
    def is_running(self) -> bool:
        """``True`` while any trigger task is still running: ``False`` once every
        trigger has returned, after ``stop()``, and once the loop that started the
        runner is closed (the runner then stops, and can be started on another loop)."""
    def add(self, trigger: TriggerCallable | Trigger | NativeTrigger) -> None:
        """Add ``trigger``; a started runner starts it at once (its schedule counts
        from now). Called on the runner's loop while it is started."""
    async def remove(self, trigger: TriggerCallable | Trigger | NativeTrigger | str) -> None:
        """Remove ``trigger`` (the object, or every trigger with that name); cancel
        it and wait for its cleanup, like ``stop()``. ``KeyError`` if none matches."""
    def pause(self, trigger: NativeTrigger | str) -> None:
        """No call of ``trigger`` starts until ``resume()``; ticks due meanwhile are
        skipped (counted). Native triggers only (``TypeError`` otherwise)."""
    def resume(self, trigger: NativeTrigger | str) -> None:
        """Calls start again, on the schedule's grid; the failures in a row start over."""
    async def run_now(self, trigger: NativeTrigger | str) -> None:
        """One extra call now, paused or not, after the call under way (if any);
        returns when it has ended. ``RuntimeError`` if the runner is not started."""
    def stats(self) -> list[TriggerStats]:
        """A ``TriggerStats`` snapshot per trigger, in order."""
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None: ...

@disjoint_base
class NativeTrigger:
    """Base class of the native triggers (``every``, ``cron``, ``after``, ``at``,
    ``on_file_change``): events from a Rust source, ``callback(ctx, ...)`` on each."""

    @property
    def name(self) -> str: ...
    @property
    def __name__(self) -> str: ...
    @property
    def delivery(self) -> TriggerDelivery: ...
    @property
    def callback(self) -> Callable[..., Awaitable[object]]: ...
    @property
    def key(self) -> str | None:
        """Its key in a fleet (``key=``), or ``None``."""
    @property
    def max_consecutive_failures(self) -> int | None:
        """Failing calls in a row after which it pauses itself, or ``None``."""
    def __call__(self, ctx: Any) -> Coroutine[Any, Any, None]:
        """A coroutine running the trigger on its own until cancelled (or done)."""
    def __copy__(self) -> Self:
        """The trigger itself: a trigger is a live handle, not a value."""
    def __deepcopy__(self, memo: dict[int, Any], /) -> Self:
        """The trigger itself (see ``__copy__``)."""
    def _source(self) -> EventSource: ...

@final
class PeriodicTrigger(NativeTrigger):
    """A periodic trigger made by ``every()``."""

    @property
    def interval(self) -> float:
        """Seconds between calls."""

@final
class CronTrigger(NativeTrigger):
    """A cron-scheduled trigger made by ``cron()``."""

    @property
    def expression(self) -> str: ...
    @property
    def tz(self) -> str | None: ...

@final
class OneShotTrigger(NativeTrigger):
    """A one-shot trigger made by ``after()`` or ``at()``."""

@final
class FileChangeTrigger(NativeTrigger):
    """A file-watching trigger made by ``on_file_change()``."""

    @property
    def path(self) -> str: ...
    @property
    def recursive(self) -> bool: ...
    @property
    def debounce(self) -> float: ...

@final
class Awaiting:
    """A Rust future, awaited through ``agent_triggers._awaiting.drive``."""

    def poll(self, wake: Callable[[], object]) -> tuple[bool, Any]: ...
    def close(self) -> None: ...

@final
class TrioServing:
    """The serve task's handle on a trio host (``agent_triggers._trio_host``)."""

    def fileno(self) -> int: ...
    def opened(self, nursery: Any) -> None: ...
    def drain(self) -> bool: ...
    def closed(self) -> None: ...

@final
class EventSource:
    """A native trigger's events, kept by the Rust runtime."""

    async def next(self) -> tuple[Any, ...] | None: ...

def every(
    interval: Interval,
    callback: Callable[[Any], Awaitable[object]],
    *,
    name: str | None = None,
    delivery: TriggerDelivery | None = None,
    key: str | None = None,
    max_consecutive_failures: int | None = None,
) -> PeriodicTrigger:
    """A trigger that calls ``await callback(ctx)`` every ``interval`` seconds.

    ``delivery`` ``None`` (the default) is ``TriggerDelivery.WAIT_IDLE``, here and in
    every native factory.
    """

def cron(
    expression: str,
    callback: Callable[[Any], Awaitable[object]],
    *,
    tz: str | ZoneInfo | timezone | None = None,
    name: str | None = None,
    delivery: TriggerDelivery | None = None,
    key: str | None = None,
    max_consecutive_failures: int | None = None,
) -> CronTrigger:
    """A trigger that calls ``await callback(ctx)`` whenever ``expression`` matches.

    ``tz`` is an IANA name, a ``ZoneInfo`` or ``timezone.utc``; a ``timezone`` with
    another offset is a ``ValueError`` (``"Etc/GMT-5"`` names UTC+05:00).
    """

def after(
    delay: Interval,
    callback: Callable[[Any], Awaitable[object]],
    *,
    name: str | None = None,
    delivery: TriggerDelivery | None = None,
    key: None = None,
    max_consecutive_failures: int | None = None,
) -> OneShotTrigger:
    """A trigger that calls ``await callback(ctx)`` once, ``delay`` seconds after start."""

def at(
    when: datetime,
    callback: Callable[[Any], Awaitable[object]],
    *,
    name: str | None = None,
    delivery: TriggerDelivery | None = None,
    key: str | None = None,
    max_consecutive_failures: int | None = None,
) -> OneShotTrigger:
    """A trigger that calls ``await callback(ctx)`` once, at the aware datetime ``when``."""

def on_file_change(
    path: str | PathLike[str],
    callback: Callable[[Any, list[FileChange]], Awaitable[object]],
    *,
    name: str | None = None,
    recursive: bool | None = None,
    debounce: Interval | None = None,
    delivery: TriggerDelivery | None = None,
    key: None = None,
    max_consecutive_failures: int | None = None,
) -> FileChangeTrigger:
    """A trigger that calls ``await callback(ctx, changes)`` when files at ``path`` change.

    ``recursive`` ``None`` (the default) is ``True``; ``debounce`` ``None`` is 0.05 s.

    The runner's ``start()`` sets up the OS watch: a change made once it has
    returned is seen (``RuntimeError`` from ``start()`` if it cannot be set up).
    """

def delivery_argument(value: TriggerDelivery | str) -> TriggerDelivery:
    """``delivery`` as native triggers take it (a member or its value), or an error naming it."""

def _inject_panic(site: str) -> None:
    """Testing only: make the next pass through ``site`` panic (``"now"``: this call)."""
