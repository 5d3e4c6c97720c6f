"""docs/contract.md §2: connections are duck-typed Python objects — and ones that
break that contract (§2, §4).

A send that raises, is a plain `def`, returns a non-awaitable, never returns, raises
`CancelledError` itself or is replaced by a non-callable; a `wait_for_idle` that never
resolves; an `is_idle` that raises or blocks. Each is met by Python triggers
(`ctx.send` and `ctx.send_when_idle`) and by native ones (`every`, `after`, `cron`
callbacks that send), with conftest's hostile triggers and bystanders. For each: what
is logged (logger `agent_triggers`), that healthy triggers beside it keep running, and
that `stop()` still completes, within a generous bound.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio

from agent_triggers import TriggerContext, TriggerRunner

from conftest import (
    KINDS,
    METHODS,
    AntigravityConnection,
    AttributeIdleConnection,
    BareConnection,
    FakeConnection,
    Kind,
    Method,
    MethodIdleConnection,
    Probe,
    RaisingConnection,
    Send,
    SendFailedError,
    as_connection,
    asyncio_only,
    bounded,
    cancelled,
    error_records,
    hostile_names,
    on_trio,
    run_hostile,
    send_method,
    wait_for,
)


class BothSendMethodsConnection:
    def __init__(self) -> None:
        self.via_send_trigger: list[str] = []
        self.via_notification: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.via_send_trigger.append(content)

    async def send_trigger_notification(self, content: str) -> None:
        self.via_notification.append(content)


class NoSendMethodConnection:
    """Has everything a connection may have except a send method."""

    is_idle = True

    async def wait_for_idle(self) -> None:
        pass

    async def send(self, content: str) -> None:
        pass


class RaisingNotificationConnection:
    def __init__(self) -> None:
        self.error = SendFailedError("notification channel closed")

    async def send_trigger_notification(self, content: str) -> None:
        raise self.error


# --- send method names ---------------------------------------------------------


async def test_send_uses_send_trigger(connection: FakeConnection) -> None:
    await TriggerContext(connection).send("hello")
    assert connection.sent == ["hello"]


async def test_send_uses_send_trigger_notification_when_send_trigger_is_absent(
    antigravity_connection: AntigravityConnection,
) -> None:
    await TriggerContext(antigravity_connection).send("hello")
    assert antigravity_connection.sent == ["hello"]


async def test_send_trigger_takes_precedence_over_send_trigger_notification() -> None:
    conn = BothSendMethodsConnection()
    await TriggerContext(conn).send("hello")
    assert conn.via_send_trigger == ["hello"]
    assert conn.via_notification == []


async def test_runner_triggers_send_through_send_trigger_notification(
    antigravity_connection: AntigravityConnection,
) -> None:
    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("from a trigger")

    async with TriggerRunner([greet], antigravity_connection):
        await wait_for(lambda: antigravity_connection.sent == ["from a trigger"])


async def test_runner_triggers_prefer_send_trigger_when_both_exist() -> None:
    conn = BothSendMethodsConnection()

    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("from a trigger")

    async with TriggerRunner([greet], conn):
        await wait_for(lambda: conn.via_send_trigger == ["from a trigger"])
    assert conn.via_notification == []


# --- is_idle -----------------------------------------------------------------------


@pytest.mark.parametrize("idle", [True, False])
def test_is_idle_read_from_a_property(idle: bool) -> None:
    ctx = TriggerContext(FakeConnection(idle=idle))
    assert ctx.is_idle is idle


@pytest.mark.parametrize("idle", [True, False])
def test_is_idle_read_from_a_plain_attribute(idle: bool) -> None:
    ctx = TriggerContext(AttributeIdleConnection(idle=idle))
    assert ctx.is_idle is idle


@pytest.mark.parametrize("idle", [True, False])
def test_is_idle_calls_a_zero_argument_method(idle: bool) -> None:
    ctx = TriggerContext(MethodIdleConnection(idle=idle))
    assert ctx.is_idle is idle


def test_is_idle_follows_the_connection_as_it_changes(
    connection: FakeConnection, method_idle_connection: MethodIdleConnection
) -> None:
    ctx = TriggerContext(connection)
    assert ctx.is_idle is True
    connection.set_idle(False)
    assert ctx.is_idle is False
    connection.set_idle(True)
    assert ctx.is_idle is True

    method_ctx = TriggerContext(method_idle_connection)
    assert method_ctx.is_idle is False
    method_idle_connection.idle = True
    assert method_ctx.is_idle is True


def test_absent_is_idle_means_always_idle(
    bare_connection: BareConnection, antigravity_connection: AntigravityConnection
) -> None:
    assert TriggerContext(bare_connection).is_idle is True
    assert TriggerContext(antigravity_connection).is_idle is True


# --- wait_for_idle -------------------------------------------------------------


async def test_absent_wait_for_idle_lets_send_when_idle_send_at_once(
    bare_connection: BareConnection,
) -> None:
    await bounded(TriggerContext(bare_connection).send_when_idle("now"), 2.0)
    assert bare_connection.sent == ["now"]


async def test_absent_wait_for_idle_on_an_antigravity_connection(
    antigravity_connection: AntigravityConnection,
) -> None:
    ctx = TriggerContext(antigravity_connection)
    await bounded(ctx.send_when_idle("now"), 2.0)
    assert antigravity_connection.sent == ["now"]


async def test_present_wait_for_idle_is_awaited_before_sending(
    busy_connection: FakeConnection,
) -> None:
    sent = anyio.Event()

    async def send_when_idle() -> None:
        await TriggerContext(busy_connection).send_when_idle("later")
        sent.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(send_when_idle)
        try:
            await wait_for(lambda: busy_connection.waits == 1, what="the send to wait for idle")
            await anyio.sleep(0.1)  # time for a send that did not wait to show up (a negative)
            assert busy_connection.sent == []
            busy_connection.set_idle(True)
            await bounded(sent.wait(), 5.0)
            assert busy_connection.sent == ["later"]
        finally:
            tasks.cancel_scope.cancel()


# --- validation at construction ------------------------------------------------


@pytest.mark.parametrize(
    "bad_connection",
    [object(), NoSendMethodConnection(), None, "send_trigger"],
    ids=["object", "no-send-method", "None", "str"],
)
def test_trigger_context_rejects_a_connection_without_a_send_method(
    bad_connection: Any,
) -> None:
    with pytest.raises(TypeError, match="send_trigger"):
        TriggerContext(bad_connection)


def test_trigger_context_keyword_rejects_a_connection_without_a_send_method() -> None:
    bad_connection: Any = NoSendMethodConnection()
    with pytest.raises(TypeError, match="send_trigger"):
        TriggerContext(connection=bad_connection)


@pytest.mark.parametrize(
    "bad_connection",
    [object(), NoSendMethodConnection(), None, "send_trigger"],
    ids=["object", "no-send-method", "None", "str"],
)
def test_trigger_runner_rejects_a_connection_without_a_send_method(
    bad_connection: Any,
) -> None:
    async def noop(ctx: TriggerContext) -> None:
        pass

    with pytest.raises(TypeError, match="send_trigger"):
        TriggerRunner([noop], bad_connection)


def test_trigger_runner_with_no_triggers_still_checks_the_connection() -> None:
    bad_connection: Any = object()
    with pytest.raises(TypeError, match="send_trigger"):
        TriggerRunner([], bad_connection)


def test_trigger_runner_keyword_rejects_a_connection_without_a_send_method() -> None:
    bad_connection: Any = NoSendMethodConnection()
    with pytest.raises(TypeError, match="send_trigger"):
        TriggerRunner(triggers=[], connection=bad_connection)


# --- a send that raises ----------------------------------------------------------


async def test_send_error_propagates_to_ctx_send(raising_connection: RaisingConnection) -> None:
    ctx = TriggerContext(raising_connection)
    with pytest.raises(SendFailedError) as excinfo:
        await ctx.send("doomed")
    assert excinfo.value is raising_connection.error
    assert raising_connection.attempts == ["doomed"]


async def test_send_error_propagates_to_send_when_idle_and_deliver(
    raising_connection: RaisingConnection,
) -> None:
    ctx = TriggerContext(raising_connection)
    with pytest.raises(SendFailedError) as when_idle:
        await ctx.send_when_idle("doomed")
    assert when_idle.value is raising_connection.error
    with pytest.raises(SendFailedError) as delivered:
        await ctx.deliver("doomed")
    assert delivered.value is raising_connection.error


async def test_send_trigger_notification_error_propagates_to_ctx_send() -> None:
    conn = RaisingNotificationConnection()
    with pytest.raises(SendFailedError) as excinfo:
        await TriggerContext(conn).send("doomed")
    assert excinfo.value is conn.error


async def test_send_error_propagates_to_the_awaiting_trigger(
    raising_connection: RaisingConnection,
) -> None:
    caught: list[BaseException] = []

    async def sender(ctx: TriggerContext) -> None:
        try:
            await ctx.send("doomed")
        except SendFailedError as exc:
            caught.append(exc)

    async with TriggerRunner([sender], raising_connection):
        await wait_for(lambda: caught)
    assert caught == [raising_connection.error]
    assert caught[0] is raising_connection.error


# --- connections that break the contract, met by Python and native triggers ---------


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
            await anyio.Event().wait()
        except cancelled():
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
            await anyio.Event().wait()
        except cancelled():
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


# --- a send whose awaitable raises the host's cancellation itself --------------------


async def stray_trio_cancelled() -> BaseException:
    """A `trio.Cancelled` no scope is cancelling any more: caught inside the scope
    that raised it, to be raised again outside it (how trio code that mishandles
    a cancellation lets one loose)."""
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            return exc
    raise AssertionError("the cancelled scope did not cancel the checkpoint")


class SelfCancellingConnection:
    """`send_trigger` returns an awaitable that raises the host's cancellation
    exception though nobody cancelled anything: a coroutine raising it
    (`CancelledError` on asyncio, a stray `trio.Cancelled` on trio), or, on
    asyncio, a cancelled future."""

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
        if on_trio():
            raise await stray_trio_cancelled()
        raise asyncio.CancelledError


async def assert_self_cancelling_ends_only_that_call(
    kind: Kind, flavour: str, captured: pytest.LogCaptureFixture
) -> None:
    # The cancellation ends the hostile trigger's call (a Python trigger
    # ends; an `every` goes on to its next tick) and leaks nowhere: the
    # bystanders, the runner and this test's own task run on.
    connection = SelfCancellingConnection(flavour)
    probe = await run_hostile(connection, kind, failing_once_or_repeating(kind))
    assert probe.returned == []
    assert set(connection.attempts) == hostile_names(kind)
    await anyio.lowlevel.checkpoint()  # this task was not cancelled
    # Whether it is logged: see the tests after these.
    assert all(
        isinstance(exc, cancelled())
        for name in hostile_names(kind)
        for exc in logged_failures(captured, name)
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_raising_the_hosts_cancellation_ends_only_that_call(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    await assert_self_cancelling_ends_only_that_call(kind, "coroutine", captured)


@asyncio_only  # an asyncio future: trio cannot await one
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_returning_a_cancelled_future_ends_only_that_call(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    await assert_self_cancelling_ends_only_that_call(kind, "cancelled-future", captured)


LOGGED_SINCE_311 = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Task.cancelling(), which tells a CancelledError nobody asked for, is 3.11+",
)


async def assert_self_cancelling_is_logged(
    kind: Kind, flavour: str, captured: pytest.LogCaptureFixture
) -> None:
    # The runner did not cancel these calls, so their end is a failure, not
    # a stop: like any other exception it is logged, naming the trigger.
    # (A Python trigger ended this way would otherwise vanish without a trace.)
    connection = SelfCancellingConnection(flavour)
    await run_hostile(connection, kind, failing_once_or_repeating(kind))
    assert_each_failed_with(captured, hostile_names(kind), cancelled())


@LOGGED_SINCE_311
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_raising_the_hosts_cancellation_on_its_own_is_logged(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    await assert_self_cancelling_is_logged(kind, "coroutine", captured)


@LOGGED_SINCE_311
@asyncio_only  # an asyncio future: trio cannot await one
@pytest.mark.parametrize("kind", KINDS)
async def test_a_send_returning_a_cancelled_future_on_its_own_is_logged(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    await assert_self_cancelling_is_logged(kind, "cancelled-future", captured)


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
    """`is_idle` blocks the host briefly, then says idle."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.reads = 0

    @property
    def is_idle(self) -> bool:
        time.sleep(0.05)  # blocks the host briefly, the point of this connection
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
        await send_method(ctx, method)("hello")


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
        await send_method(ctx, method)("hello")
