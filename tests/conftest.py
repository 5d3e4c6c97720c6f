"""What several test files share: fake connections (docs/contract.md §2), test
triggers and bounded waits; the checks and the duration model of the argument tests;
the hostile triggers and bystanders of the misbehaving-connection tests.

Timing in these tests is only ever checked through bounded polls with generous
limits: the fakes record what happened, the tests wait until it has. A test that
needs a trigger to be running waits for the trigger to say so (`sleeper`,
`Stubborn.started`, `until_set`), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import numbers
import os
import platform
import re
import sys
import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

import anyio
import pytest
import sniffio
from hypothesis import settings

from agent_triggers import TriggerContext, TriggerRunner, after, cron, every

if TYPE_CHECKING:
    from agent_triggers._core import Connection, NativeTrigger, TriggerCallable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def loop_factories() -> dict[str, LoopFactory]:
    """The event loops the package supports here, by name: asyncio's, and uvloop
    where it is installed (never on Windows; not without the dev extras)."""
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


def backends() -> list[Any]:
    """The hosts every async test runs on (anyio's pytest plugin, `anyio_mode =
    "auto"`): asyncio's own loop, asyncio on uvloop where it is installed (never
    on Windows; not without the dev extras), and trio (not on Windows: see
    docs/contract.md §7). Ids: `[asyncio]`, `[uvloop]`, `[trio]`."""
    no_options: dict[str, Any] = {}
    params = [pytest.param(("asyncio", no_options), id="asyncio")]
    if "uvloop" in loop_factories():
        params.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))
    if sys.platform != "win32":  # the trio host needs Unix in this release (§7)
        params.append(pytest.param(("trio", no_options), id="trio"))
    return params


ASYNCIO_BACKENDS = [param for param in backends() if param.id != "trio"]
"""For a module whose tests are about asyncio itself (its loops, its task API, a
peer built on it): override `anyio_backend` there with these params."""


asyncio_only = pytest.mark.parametrize("anyio_backend", ASYNCIO_BACKENDS)
"""For one test about asyncio itself: `@asyncio_only` runs it on asyncio and
uvloop only."""


@pytest.fixture(params=backends())
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """A new host per test (function scope: no loop is shared between tests)."""
    return request.param


Host = tuple[str, dict[str, Any]]
"""An `anyio_backend` param: asyncio's own loop, uvloop or trio (see `backends`)."""


def run_on(host: Host, main: Callable[[], Awaitable[None]]) -> None:
    """Run `main()` to completion on a new `host` (as hypothesis examples run async
    code: a sync test parametrised with `backends()`)."""
    backend, options = host
    anyio.run(main, backend=backend, backend_options=options)


def on_trio() -> bool:
    """Whether the running test's host is trio."""
    return sniffio.current_async_library() == "trio"


def cancelled() -> type[BaseException]:
    """The running host's cancellation exception: `asyncio.CancelledError` or
    `trio.Cancelled`."""
    return anyio.get_cancelled_exc_class()


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """Await `awaitable`, raising `TimeoutError` after `timeout` s (on any host)."""
    with anyio.fail_after(timeout):
        return await awaitable


def antigravity_sdk_missing() -> str | None:
    """Why google-antigravity cannot be installed here, or ``None``: then the dev
    extras have installed it, and the tests that drive it must run, not skip."""
    if sys.version_info < (3, 10):
        return "google-antigravity needs Python 3.10+"
    if platform.machine() == "aarch64":
        return "google-antigravity publishes no aarch64 Linux wheel"
    return None


def run_to_completion(factory: LoopFactory, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` on a new loop from `factory` (asyncio.run takes no
    loop factory before Python 3.12): run it, cancel what is left, close."""
    loop = factory()
    try:
        return loop.run_until_complete(main())
    finally:
        close_like_asyncio_run(loop)


def close_like_asyncio_run(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop that is not running as `asyncio.run` does: cancel its tasks
    and let them finish, finalise async generators, then close it."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


class SendFailedError(Exception):
    """What `RaisingConnection` raises from its send method."""


class FakeConnection:
    """A full connection: `send_trigger`, `is_idle` property and `wait_for_idle`.

    Starts idle; `set_idle(False)` puts the agent mid-turn. `waits` counts the
    `wait_for_idle()` calls begun, so a test can wait until a send is waiting.
    """

    def __init__(self, *, idle: bool = True) -> None:
        self.sent: list[str] = []
        self.waits = 0
        self._idle = idle
        # Created on first wait, inside the running loop (Python 3.9's Event binds
        # to a loop at construction).
        self._idle_event: anyio.Event | None = None

    @property
    def is_idle(self) -> bool:
        return self._idle

    def set_idle(self, idle: bool) -> None:
        self._idle = idle
        if self._idle_event is not None:
            if idle:
                self._idle_event.set()
            elif self._idle_event.is_set():
                self._idle_event = anyio.Event()  # anyio's events are never cleared

    async def wait_for_idle(self) -> None:
        self.waits += 1
        if self._idle_event is None:
            self._idle_event = anyio.Event()
            if self._idle:
                self._idle_event.set()
        await self._idle_event.wait()

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class AntigravityConnection:
    """Antigravity's connection shape: only `send_trigger_notification`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_trigger_notification(self, content: str) -> None:
        self.sent.append(content)


class MethodIdleConnection:
    """`is_idle` is a zero-argument method, not a property."""

    def __init__(self, *, idle: bool) -> None:
        self.sent: list[str] = []
        self.idle = idle

    def is_idle(self) -> bool:
        return self.idle

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class AttributeIdleConnection:
    """`is_idle` is a plain instance attribute."""

    def __init__(self, *, idle: bool) -> None:
        self.sent: list[str] = []
        self.is_idle = idle

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class BareConnection:
    """Only `send_trigger`: no `is_idle`, no `wait_for_idle`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class RaisingConnection:
    """`send_trigger` raises `self.error` (the same instance every time)."""

    def __init__(self) -> None:
        self.error = SendFailedError("agent connection lost")
        self.attempts: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.attempts.append(content)
        raise self.error


async def wait_for(
    predicate: Callable[[], object], timeout: float = 5.0, what: str | None = None
) -> None:
    """Poll `predicate` every 10 ms until it is truthy; fail the test after `timeout` s."""
    deadline = anyio.current_time() + timeout
    while True:
        if predicate():
            return
        if anyio.current_time() >= deadline:
            description = what or getattr(predicate, "__name__", repr(predicate))
            pytest.fail(f"timed out after {timeout} s waiting for: {description}")
        await anyio.sleep(0.01)  # the poll interval


async def until_set(event: anyio.Event, timeout: float = 5.0, what: str | None = None) -> None:
    """Wait until `event` is set; fail the test after `timeout` s."""
    try:
        await bounded(event.wait(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for: {what or 'the event to be set'}")


@asynccontextmanager
async def running(
    runner: TriggerRunner, *, stop_within: float = 10.0
) -> AsyncGenerator[None, None]:
    """`async with runner:`, with the stop on exit bounded: after `stop_within` s it
    raises `TimeoutError` and fails the test instead of hanging it."""
    await runner.start()
    try:
        yield
    finally:
        await bounded(runner.stop(), stop_within)


async def wait_forever(ctx: object) -> None:
    """A trigger that sleeps until cancelled."""
    await anyio.sleep(3600)


def sleeper(started: anyio.Event) -> Callable[[object], Coroutine[Any, Any, None]]:
    """A trigger that sets `started` once it runs, then sleeps until cancelled.

    `await until_set(started)` after `start()` is the point where it is running: a
    trigger cancelled before its first step never runs (docs/contract.md §4), so a
    test of what cancellation does to a running trigger waits for that first.
    """

    async def sleeper(ctx: object) -> None:
        started.set()
        await anyio.sleep(3600)

    return sleeper


class Stubborn:
    """A trigger that swallows every cancellation until `release()`d: what
    `stop(timeout=...)` abandons.

    Make it inside the running host (anyio's Event is made for one). The runner
    names it by its class: `'Stubborn'`. After the first cancellation it waits
    shielded: trio's cancellation is level-triggered (every later checkpoint in
    the cancelled scope raises again), asyncio's is a single `cancel()` — so
    `cancellations` counts how many times the runner cancelled it, on both.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.cancellations = 0
        self.finished = False
        self.started = anyio.Event()
        self.released = anyio.Event()

    async def __call__(self, ctx: object) -> None:
        self.calls += 1
        self.started.set()
        try:
            while not self.released.is_set():
                try:
                    if self.cancellations:
                        with anyio.CancelScope(shield=True):
                            await self.released.wait()
                    else:
                        await self.released.wait()
                except cancelled():
                    self.cancellations += 1
        finally:
            self.finished = True

    def release(self) -> None:
        self.released.set()


async def stays_false(predicate: Callable[[], object], duration: float = 0.1) -> bool:
    """Whether `predicate` stays falsy for `duration` s (polled every 10 ms)."""
    deadline = anyio.current_time() + duration
    while anyio.current_time() < deadline:
        if predicate():
            return False
        await anyio.sleep(0.01)  # the poll interval
    return not predicate()


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records of the `agent_triggers` logger (the contract, §4: how failures are logged)."""
    return [
        record
        for record in caplog.records
        if record.name == "agent_triggers" and record.levelno == logging.ERROR
    ]


@pytest.fixture
def connection() -> FakeConnection:
    return FakeConnection()


@pytest.fixture
def busy_connection() -> FakeConnection:
    return FakeConnection(idle=False)


@pytest.fixture
def antigravity_connection() -> AntigravityConnection:
    return AntigravityConnection()


@pytest.fixture
def method_idle_connection() -> MethodIdleConnection:
    return MethodIdleConnection(idle=False)


@pytest.fixture
def bare_connection() -> BareConnection:
    return BareConnection()


@pytest.fixture
def raising_connection() -> RaisingConnection:
    return RaisingConnection()


# --- checking arguments (test_durations, test_arguments, test_context, test_stop) -----

# Quick properties build objects only; those that start a runner run fewer examples.
QUICK = settings(max_examples=300, deadline=None, database=None)
RUNNING = settings(max_examples=15, deadline=None, database=None)

MAX_SECONDS = 3.2e9
"""The longest duration accepted: "about 100 years" in `every()`'s docstring, 3.2e9 s in
the native code (past it the timer's clock arithmetic would overflow)."""

UTC = dt.timezone.utc
LATEST_OFFSET = dt.timezone(-dt.timedelta(hours=23, minutes=59))
"""With `datetime.max`, the latest instant a datetime can name: year 10000 in UTC."""
EARLIEST_OFFSET = dt.timezone(dt.timedelta(hours=23, minutes=59))
"""With `datetime.min`, the earliest instant a datetime can name: year 0 in UTC."""
WATCHED = os.path.join(tempfile.gettempdir(), "agent-triggers-hostile-input")
"""A path for `on_file_change` objects that are built but never started."""


async def noop(ctx: object, *changes: object) -> None:
    pass


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on a fresh asyncio loop (the way hypothesis examples run async code)."""
    return asyncio.run(main())


async def awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def shown(text: str) -> str:
    """`text` cut short for an assertion message (some inputs are megabytes long)."""
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


def assert_rejection(error: BaseException, error_type: type[Exception], *words: str) -> None:
    """`error` is exactly `error_type` and its message contains each of `words`."""
    message = str(error)
    assert type(error) is error_type, f"{type(error).__name__}: {shown(message)}"
    for word in words:
        assert word in message, f"{word!r} not in the message: {shown(message)}"


@contextmanager
def rejected(
    error_type: type[Exception], argument: str, *words: str
) -> Generator[pytest.ExceptionInfo[Exception], None, None]:
    """The block raises exactly `error_type`, its message naming `argument` (a whole
    word) and containing each of `words`."""
    with pytest.raises(error_type, match=rf"\b{re.escape(argument)}\b") as caught:
        yield caught
    assert_rejection(caught.value, error_type, *words)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def agent_trigger_logs() -> Generator[list[logging.LogRecord], None, None]:
    """What the `agent_triggers` logger emits meanwhile (caplog is per test, not per example)."""
    logger = logging.getLogger("agent_triggers")
    handler = Records()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def messages_at(records: list[logging.LogRecord], level: int) -> list[str]:
    return [record.getMessage() for record in records if record.levelno == level]


def sender(text: str) -> Callable[[TriggerContext], Coroutine[Any, Any, None]]:
    """A trigger that sends `text` once."""

    async def send(ctx: TriggerContext) -> None:
        await ctx.send(text)

    return send


# --- the duration model (test_durations, test_stop) ------------------------------------


@dataclass(frozen=True)
class Accepted:
    seconds: float
    """As the object reports it: the value rounded to the nearest whole nanosecond."""
    spelled: str
    """As a default name spells it: a plain int/float as written, others by their seconds."""


@dataclass(frozen=True)
class Rejected:
    error: type[Exception]
    reason: str
    """A word or phrase the message must contain besides the argument's name."""


Expected = Union[Accepted, Rejected]


def nanoseconds(seconds: float) -> tuple[int, float]:
    """`seconds` rounded to whole nanoseconds: the count, and as float seconds."""
    count = round(Fraction(seconds) * 10**9)
    whole, part = divmod(count, 10**9)
    return count, float(whole) + float(part) / 1e9


def expected_duration(value: object, *, allow_zero: bool) -> Expected:
    """What a duration argument must do: seconds as a real number (or a `Decimal`), or
    a `timedelta`; not finite, negative (or zero, unless `allow_zero`), under one
    nanosecond or over `MAX_SECONDS` is a `ValueError`; anything else (`bool`, `str`,
    `None`, ...) a `TypeError`."""
    negative = "zero or more" if allow_zero else "positive"
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, bool):
        if isinstance(value, Decimal) and value.is_nan():
            return Rejected(ValueError, "finite")
        exact: Any = value
        try:
            seconds = float(exact)
        except OverflowError:  # an int or Fraction beyond any float
            return Rejected(ValueError, "at most" if exact > 0 else negative)
        if isinstance(value, Decimal) and value.is_finite() and math.isinf(seconds):
            # a Decimal beyond any float: float() gives an infinity, not an error
            return Rejected(ValueError, "at most" if value > 0 else negative)
    else:
        return Rejected(TypeError, "number of seconds")
    if not math.isfinite(seconds):
        return Rejected(ValueError, "finite")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        return Rejected(ValueError, negative)
    if seconds > MAX_SECONDS:
        return Rejected(ValueError, "at most")
    count, reported = nanoseconds(seconds)
    if count == 0 and not allow_zero:
        return Rejected(ValueError, "nanosecond")
    if isinstance(value, (int, float)):
        spelled = str(value)
    elif seconds.is_integer():
        spelled = f"{seconds:.0f}"
    else:  # the shortest round-trip digits, without an exponent
        spelled = format(Decimal(repr(seconds)), "f")
    return Accepted(reported, spelled)


# --- hostile triggers and connections (test_connection, test_loops) --------------------
#
# Triggers run against a connection that breaks its contract (or a trigger that
# misbehaves), beside healthy bystanders: what is logged, that the bystanders keep
# running, and that stop() still completes within a generous bound.

Kind = Literal["python", "native"]
Method = Literal["send", "send_when_idle"]
KINDS: list[Kind] = ["python", "native"]
METHODS: list[Method] = ["send", "send_when_idle"]

#: How long the hostile triggers get to be called (cron fires on the second).
CALLED_WITHIN = 10.0
#: How long `stop()` may take, however hostile the triggers and connection.
STOP_WITHIN = 10.0

Send = Callable[[str], Awaitable[None]]
Body = Callable[[TriggerContext, Send, str], Awaitable[None]]


def as_connection(connection: object) -> Connection:
    """A connection that breaks the contract on purpose, typed as one."""
    hostile: Any = connection
    return hostile  # type: ignore[no-any-return]


def send_method(ctx: TriggerContext, method: Method) -> Send:
    return ctx.send if method == "send" else ctx.send_when_idle


def hostile_names(kind: Kind) -> set[str]:
    """The names of the triggers `hostile_triggers(kind, ...)` makes."""
    sources = ["python"] if kind == "python" else ["every", "after", "cron"]
    return {f"{source}_{method}" for source in sources for method in METHODS}


class Probe:
    """What the hostile triggers did: each records its name on entry and on return."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.returned: list[str] = []

    def entered_each(self, names: set[str], times: int = 1) -> bool:
        return all(self.entered.count(name) >= times for name in names)


async def send_own_name(ctx: TriggerContext, send: Send, name: str) -> None:
    await send(name)


def hostile_triggers(
    kind: Kind, probe: Probe, body: Body = send_own_name
) -> list[TriggerCallable | NativeTrigger]:
    """One trigger per source of `kind` and per send method, each running `body`.

    The Python triggers loop (`body`, then a short sleep) until `body` raises or
    they are stopped; the native ones run `body` once per event: `every(0.1)`,
    `after(0.05)` and `cron` each second.
    """

    def make(
        name: str, method: Method, *, loop: bool
    ) -> Callable[[TriggerContext], Awaitable[None]]:
        async def hostile(ctx: TriggerContext) -> None:
            while True:
                probe.entered.append(name)
                await body(ctx, send_method(ctx, method), name)
                probe.returned.append(name)
                if not loop:
                    return
                await anyio.sleep(0.05)  # the pace of its calls

        hostile.__name__ = name
        return hostile

    triggers: list[TriggerCallable | NativeTrigger] = []
    for method in METHODS:
        if kind == "python":
            triggers.append(make(f"python_{method}", method, loop=True))
        else:
            triggers += [
                every(0.1, make(f"every_{method}", method, loop=False), name=f"every_{method}"),
                after(0.05, make(f"after_{method}", method, loop=False), name=f"after_{method}"),
                cron(
                    "* * * * * *",
                    make(f"cron_{method}", method, loop=False),
                    name=f"cron_{method}",
                ),
            ]
    return triggers


class Bystanders:
    """Healthy triggers beside the hostile ones (a Python loop and an `every`);
    they never touch the connection."""

    def __init__(self) -> None:
        self.python_ticks = 0
        self.every_ticks = 0

    def triggers(self) -> list[TriggerCallable | NativeTrigger]:
        async def bystander_python(ctx: TriggerContext) -> None:
            while True:
                self.python_ticks += 1
                await anyio.sleep(0.02)  # the pace of its ticks

        async def bystander_every(ctx: TriggerContext) -> None:
            self.every_ticks += 1

        return [bystander_python, every(0.02, bystander_every, name="bystander_every")]

    def ticks(self) -> tuple[int, int]:
        return self.python_ticks, self.every_ticks

    async def keep_running(self, ticks: int = 3) -> None:
        python, periodic = self.ticks()
        await wait_for(
            lambda: self.python_ticks >= python + ticks and self.every_ticks >= periodic + ticks,
            timeout=10,
            what=f"both bystanders to tick {ticks} more times",
        )


async def run_hostile(
    connection: object,
    kind: Kind,
    until: Callable[[Probe], bool],
    *,
    body: Body = send_own_name,
    after_construction: Callable[[], None] | None = None,
) -> Probe:
    """Run `kind`'s hostile triggers and the bystanders against `connection`.

    Waits until `until(probe)` holds, then for the bystanders to keep ticking,
    then stops the runner: that must complete within `STOP_WITHIN`, leaving
    nothing running and nothing firing.
    """
    probe = Probe()
    bystanders = Bystanders()
    runner = TriggerRunner(
        [*hostile_triggers(kind, probe, body), *bystanders.triggers()], as_connection(connection)
    )
    if after_construction is not None:
        after_construction()
    await runner.start()
    try:
        await wait_for(
            lambda: until(probe), timeout=CALLED_WITHIN, what="the hostile triggers to be called"
        )
        await bystanders.keep_running()
        await bounded(runner.stop(), STOP_WITHIN)
        assert not runner.is_running
        stopped_at = bystanders.ticks()
        await anyio.sleep(0.1)  # several ticks' time for a stray one to show up (a negative)
        assert bystanders.ticks() == stopped_at, "a trigger fired after stop() returned"
    finally:
        # After a failure above, leave nothing firing into later tests.
        await runner.stop(timeout=5)
    return probe


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    return caplog
