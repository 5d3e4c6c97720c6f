"""docs/contract.md §2: connections are duck-typed Python objects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_triggers import TriggerContext, TriggerRunner

from conftest import (
    AntigravityConnection,
    AttributeIdleConnection,
    BareConnection,
    FakeConnection,
    MethodIdleConnection,
    RaisingConnection,
    SendFailedError,
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
    await asyncio.wait_for(TriggerContext(bare_connection).send_when_idle("now"), timeout=2.0)
    assert bare_connection.sent == ["now"]


async def test_absent_wait_for_idle_on_an_antigravity_connection(
    antigravity_connection: AntigravityConnection,
) -> None:
    ctx = TriggerContext(antigravity_connection)
    await asyncio.wait_for(ctx.send_when_idle("now"), timeout=2.0)
    assert antigravity_connection.sent == ["now"]


async def test_present_wait_for_idle_is_awaited_before_sending(
    busy_connection: FakeConnection,
) -> None:
    task = asyncio.ensure_future(TriggerContext(busy_connection).send_when_idle("later"))
    try:
        await wait_for(lambda: busy_connection.waits == 1, what="the send to wait for idle")
        await asyncio.sleep(0.1)  # time for a send that did not wait to show up (a negative)
        assert busy_connection.sent == []
        busy_connection.set_idle(True)
        await asyncio.wait_for(task, timeout=5.0)
        assert busy_connection.sent == ["later"]
    finally:
        task.cancel()


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
