"""Hostile triggers and connections (docs/contract.md §2, §4).

A trigger that blocks the loop, and connections that break their contract —
a send that raises, is a plain `def`, returns a non-awaitable, never returns,
raises `CancelledError` itself or is replaced by a non-callable; a
`wait_for_idle` that never resolves; an `is_idle` that raises or blocks. Each
is met by Python triggers (`ctx.send` and `ctx.send_when_idle`) and by native
ones (`every`, `after`, `cron` callbacks that send). For each: what is logged
(logger `agent_triggers`), that healthy triggers beside it keep running, and
that `stop()` still completes, within a generous bound.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import pytest

from agent_triggers import TriggerContext, TriggerRunner, after, cron, every

from conftest import (
    BareConnection,
    FakeConnection,
    RaisingConnection,
    SendFailedError,
    error_records,
    wait_for,
)

if TYPE_CHECKING:
    from agent_triggers._core import Connection, NativeTrigger, TriggerCallable

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


def sender(ctx: TriggerContext, method: Method) -> Send:
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
                await body(ctx, sender(ctx, method), name)
                probe.returned.append(name)
                if not loop:
                    return
                await asyncio.sleep(0.05)  # the pace of its calls

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
                await asyncio.sleep(0.02)  # the pace of its ticks

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
        await asyncio.wait_for(runner.stop(), STOP_WITHIN)
        assert not runner.is_running
        stopped_at = bystanders.ticks()
        await asyncio.sleep(0.1)  # several ticks' time for a stray one to show up (a negative)
        assert bystanders.ticks() == stopped_at, "a trigger fired after stop() returned"
    finally:
        # After a failure above, leave nothing firing into later tests.
        await runner.stop(timeout=5)
    return probe


def logged_failures(caplog: pytest.LogCaptureFixture, name: str) -> list[BaseException]:
    """The exceptions logged at ERROR as failures of the trigger `name`."""
    failures: list[BaseException] = []
    for record in error_records(caplog):
        if repr(name) in record.getMessage():
            assert record.exc_info is not None, "a failure is logged with its exc_info"
            exc = record.exc_info[1]
            assert exc is not None
            assert str(exc) in record.getMessage(), "the message carries the exception text"
            failures.append(exc)
    return failures


def assert_each_failed_with(
    caplog: pytest.LogCaptureFixture, names: set[str], error: type[BaseException]
) -> None:
    """Every hostile trigger's failure is logged, as `error`; nothing else is."""
    for name in sorted(names):
        failures = logged_failures(caplog, name)
        assert failures, f"no failure of {name!r} logged"
        assert all(isinstance(exc, error) for exc in failures), (name, failures)
    logged = [record.getMessage() for record in error_records(caplog)]
    strays = [message for message in logged if not any(repr(n) in message for n in names)]
    assert strays == [], "a trigger other than the hostile ones failed"


def failing_once_or_repeating(kind: Kind) -> Callable[[Probe], bool]:
    """Every hostile trigger called; a native `every` called again after a
    failed call (its schedule goes on). A Python trigger ends on its failure."""
    names = hostile_names(kind)

    def called(probe: Probe) -> bool:
        repeating = {name for name in names if name.startswith("every_")}
        return probe.entered_each(names) and probe.entered_each(repeating, times=2)

    return called


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    return caplog


# --- a trigger that blocks the loop ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_trigger_blocking_the_loop_delays_others_but_breaks_nothing(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = FakeConnection()

    async def block_then_send(ctx: TriggerContext, send: Send, name: str) -> None:
        time.sleep(0.05)  # noqa: ASYNC251 - blocking the loop is the point
        await send(name)

    names = hostile_names(kind)
    repeating = {name for name in names if not name.startswith(("after_", "cron_"))}

    def blocked_again_and_again(probe: Probe) -> bool:
        return probe.entered_each(names) and probe.entered_each(repeating, times=3)

    probe = await run_hostile(connection, kind, blocked_again_and_again, body=block_then_send)
    assert error_records(captured) == []
    assert set(connection.sent) == names, "every blocking trigger's messages were sent"
    assert len(probe.returned) >= len(probe.entered) - len(names)


# --- a send that raises, is a plain def, or returns a non-awaitable ----------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_that_raises_is_logged_for_each_trigger(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = RaisingConnection()
    probe = await run_hostile(connection, kind, failing_once_or_repeating(kind))
    assert_each_failed_with(captured, hostile_names(kind), SendFailedError)
    for name in hostile_names(kind):
        assert all(exc is connection.error for exc in logged_failures(captured, name))
    assert probe.returned == []
    if kind == "python":
        assert len(error_records(captured)) == 2, "a failed Python trigger ends: logged once"


class PlainDefSendConnection:
    """`send_trigger` is a plain `def` (returns None)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class NonAwaitableSendConnection:
    """`send_trigger` returns something that cannot be awaited."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_trigger(self, content: str) -> str:
        self.sent.append(content)
        return content


class PlainDefNotificationConnection:
    """Antigravity's `send_trigger_notification`, as a plain `def`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_trigger_notification(self, content: str) -> None:
        self.sent.append(content)


NOT_ASYNC_SENDS = pytest.mark.parametrize(
    "connection_class",
    [PlainDefSendConnection, NonAwaitableSendConnection],
    ids=["plain-def", "non-awaitable"],
)


@NOT_ASYNC_SENDS
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_that_is_not_async_is_a_type_error_logged_for_each_trigger(
    kind: Kind, connection_class: type[object], captured: pytest.LogCaptureFixture
) -> None:
    probe = await run_hostile(connection_class(), kind, failing_once_or_repeating(kind))
    assert_each_failed_with(captured, hostile_names(kind), TypeError)
    assert probe.returned == []


# --- a send that never returns, a wait_for_idle that never resolves ----------------


class HangingSendConnection:
    """`send_trigger` never returns; it records each call and each cancellation."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.started.append(content)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(content)
            raise


@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_that_never_returns_is_cancelled_by_stop(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = HangingSendConnection()
    names = hostile_names(kind)
    probe = await run_hostile(connection, kind, lambda _: set(connection.started) >= names)
    # stop() returned only once every send under way had been cancelled.
    assert sorted(connection.cancelled) == sorted(connection.started)
    assert sorted(connection.started) == sorted(names), "calls never overlap: one send each"
    assert probe.returned == []
    assert error_records(captured) == []


class HangingIdleConnection:
    """Always mid-turn: `wait_for_idle` never resolves; sends are recorded."""

    is_idle = False

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.waits = 0
        self.cancelled_waits = 0

    async def wait_for_idle(self) -> None:
        self.waits += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_waits += 1
            raise

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wait_for_idle_that_never_resolves_is_cancelled_by_stop(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = HangingIdleConnection()
    names = hostile_names(kind)
    waiting = {name for name in names if name.endswith("_send_when_idle")}
    immediate = names - waiting

    def all_called(probe: Probe) -> bool:
        return probe.entered_each(names) and connection.waits == len(waiting)

    probe = await run_hostile(connection, kind, all_called)
    assert connection.cancelled_waits == connection.waits == len(waiting)
    assert set(connection.sent) == immediate, "ctx.send still sends; nothing sent mid-turn"
    assert not waiting & set(probe.returned)
    assert error_records(captured) == []


# --- a send replaced by a non-callable after construction --------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_replaced_by_a_non_callable_is_a_type_error_logged_for_each_trigger(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = BareConnection()
    await run_hostile(
        connection,
        kind,
        failing_once_or_repeating(kind),
        # Passed the runner's check; broken before the first send.
        after_construction=lambda: setattr(connection, "send_trigger", None),
    )
    assert_each_failed_with(captured, hostile_names(kind), TypeError)
    assert connection.sent == []


# --- a send whose awaitable raises CancelledError itself ---------------------------


class SelfCancellingConnection:
    """`send_trigger` returns an awaitable that raises `CancelledError` though
    nobody cancelled anything: a coroutine raising it, or a cancelled future."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.attempts: list[str] = []

    def send_trigger(self, content: str) -> Awaitable[None]:
        self.attempts.append(content)
        if self.flavour == "coroutine":
            return self._raise()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()
        return future

    async def _raise(self) -> None:
        raise asyncio.CancelledError


SELF_CANCELLING = pytest.mark.parametrize("flavour", ["coroutine", "cancelled-future"])


@SELF_CANCELLING
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_raising_cancelled_error_ends_only_that_call(
    kind: Kind, flavour: str, captured: pytest.LogCaptureFixture
) -> None:
    # The CancelledError ends the hostile trigger's call (a Python trigger
    # ends; an `every` goes on to its next tick) and leaks nowhere: the
    # bystanders, the runner and this test's own task run on.
    connection = SelfCancellingConnection(flavour)
    probe = await run_hostile(connection, kind, failing_once_or_repeating(kind))
    assert probe.returned == []
    assert set(connection.attempts) == hostile_names(kind)
    await asyncio.sleep(0)  # this task was not cancelled
    # Whether it is logged: see the next test.
    assert all(
        isinstance(exc, asyncio.CancelledError)
        for name in hostile_names(kind)
        for exc in logged_failures(captured, name)
    )


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Task.cancelling(), which tells a CancelledError nobody asked for, is 3.11+",
)
@SELF_CANCELLING
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_raising_cancelled_error_on_its_own_is_logged(
    kind: Kind, flavour: str, captured: pytest.LogCaptureFixture
) -> None:
    # The runner did not cancel these calls, so their end is a failure, not
    # a stop: like any other exception it is logged, naming the trigger.
    # (A Python trigger ended this way would otherwise vanish without a trace.)
    connection = SelfCancellingConnection(flavour)
    await run_hostile(connection, kind, failing_once_or_repeating(kind))
    assert_each_failed_with(captured, hostile_names(kind), asyncio.CancelledError)


# --- is_idle that raises or blocks --------------------------------------------------


class IdleCheckError(Exception):
    """What the broken `is_idle` raises."""


class RaisingIdlePropertyConnection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    @property
    def is_idle(self) -> bool:
        raise IdleCheckError("is_idle is broken")

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class RaisingIdleMethodConnection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def is_idle(self) -> bool:
        raise IdleCheckError("is_idle() is broken")

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class SlowIdleConnection:
    """`is_idle` blocks the loop briefly, then says idle."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.reads = 0

    @property
    def is_idle(self) -> bool:
        time.sleep(0.05)  # blocks the loop briefly, the point of this connection
        self.reads += 1
        return True

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


async def check_idle_then_send(ctx: TriggerContext, send: Send, name: str) -> None:
    if ctx.is_idle is not True:
        raise AssertionError("ctx.is_idle is a real bool, and this agent is idle")
    await send(name)


@pytest.mark.parametrize(
    "connection_class",
    [RaisingIdlePropertyConnection, RaisingIdleMethodConnection],
    ids=["property", "method"],
)
def test_is_idle_that_raises_raises_from_ctx_is_idle(connection_class: type[object]) -> None:
    ctx = TriggerContext(as_connection(connection_class()))
    with pytest.raises(IdleCheckError, match="is broken"):
        _ = ctx.is_idle


@pytest.mark.parametrize(
    "connection_class",
    [RaisingIdlePropertyConnection, RaisingIdleMethodConnection],
    ids=["property", "method"],
)
@pytest.mark.parametrize("kind", KINDS)
async def test_is_idle_that_raises_is_logged_for_each_trigger_reading_it(
    kind: Kind, connection_class: type[object], captured: pytest.LogCaptureFixture
) -> None:
    await run_hostile(
        connection_class(), kind, failing_once_or_repeating(kind), body=check_idle_then_send
    )
    assert_each_failed_with(captured, hostile_names(kind), IdleCheckError)


@pytest.mark.parametrize("kind", KINDS)
async def test_is_idle_that_blocks_briefly_delays_but_breaks_nothing(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = SlowIdleConnection()
    names = hostile_names(kind)
    repeating = {name for name in names if not name.startswith(("after_", "cron_"))}

    def read_again_and_again(probe: Probe) -> bool:
        return probe.entered_each(names) and probe.entered_each(repeating, times=3)

    await run_hostile(connection, kind, read_again_and_again, body=check_idle_then_send)
    assert error_records(captured) == []
    assert set(connection.sent) == names
    assert connection.reads >= len(connection.sent)


# --- clear TypeErrors where the contract is broken at call time ---------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("connection_class", "send_name"),
    [
        (PlainDefSendConnection, "send_trigger"),
        (NonAwaitableSendConnection, "send_trigger"),
        (PlainDefNotificationConnection, "send_trigger_notification"),
    ],
    ids=["plain-def", "non-awaitable", "plain-def-notification"],
)
async def test_a_send_that_is_not_async_is_a_clear_type_error(
    connection_class: type[object], send_name: str, method: Method
) -> None:
    # Named as ctx.send names it: which method, and what it should have returned.
    ctx = TriggerContext(as_connection(connection_class()))
    with pytest.raises(TypeError, match=rf"{send_name}\(\) must return an awaitable"):
        await sender(ctx, method)("hello")


class PlainDefWaitForIdleConnection:
    """`wait_for_idle` is a plain `def`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def wait_for_idle(self) -> None:
        pass

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


async def test_a_wait_for_idle_that_is_not_async_is_a_clear_type_error() -> None:
    connection = PlainDefWaitForIdleConnection()
    ctx = TriggerContext(as_connection(connection))
    with pytest.raises(TypeError, match=r"wait_for_idle\(\) must return an awaitable"):
        await ctx.send_when_idle("hello")
    assert connection.sent == [], "nothing is sent without a confirmed idle agent"


@pytest.mark.parametrize("method", METHODS)
async def test_a_send_replaced_by_a_non_callable_is_a_clear_type_error(method: Method) -> None:
    connection = BareConnection()
    ctx = TriggerContext(connection)
    setattr(connection, "send_trigger", None)  # noqa: B010 - mypy forbids assigning a method
    with pytest.raises(TypeError, match=r"send_trigger"):
        await sender(ctx, method)("hello")
