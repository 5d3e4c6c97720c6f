"""docs/contract.md §3: `TriggerContext`, the handle each trigger sends through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_triggers import Trigger, TriggerContext, TriggerDelivery, TriggerRunner

from conftest import FakeConnection, MethodIdleConnection, stays_false, wait_for

NOT_STR = [5, b"bytes", None, ["a"]]
NOT_STR_IDS = ["int", "bytes", "None", "list"]


# --- construction --------------------------------------------------------------


async def test_constructed_with_a_positional_connection(connection: FakeConnection) -> None:
    ctx = TriggerContext(connection)
    await ctx.send("positional")
    assert connection.sent == ["positional"]


async def test_constructed_with_the_connection_keyword(connection: FakeConnection) -> None:
    ctx = TriggerContext(connection=connection)
    await ctx.send("keyword")
    assert connection.sent == ["keyword"]


# --- send --------------------------------------------------------------------------


async def test_send_sends_now_even_while_the_agent_is_busy(
    busy_connection: FakeConnection,
) -> None:
    ctx = TriggerContext(busy_connection)
    await asyncio.wait_for(ctx.send("interrupt"), timeout=2.0)
    assert busy_connection.sent == ["interrupt"]


async def test_send_keeps_order(connection: FakeConnection) -> None:
    ctx = TriggerContext(connection)
    for i in range(5):
        await ctx.send(f"m{i}")
    assert connection.sent == ["m0", "m1", "m2", "m3", "m4"]


@pytest.mark.parametrize("content", NOT_STR, ids=NOT_STR_IDS)
async def test_send_rejects_non_str_content(connection: FakeConnection, content: Any) -> None:
    ctx = TriggerContext(connection)
    with pytest.raises(TypeError):
        await ctx.send(content)
    assert connection.sent == []


@pytest.mark.parametrize("content", NOT_STR, ids=NOT_STR_IDS)
async def test_send_when_idle_rejects_non_str_content(
    connection: FakeConnection, content: Any
) -> None:
    ctx = TriggerContext(connection)
    with pytest.raises(TypeError):
        await ctx.send_when_idle(content)
    assert connection.sent == []


@pytest.mark.parametrize("content", NOT_STR, ids=NOT_STR_IDS)
async def test_deliver_rejects_non_str_content(connection: FakeConnection, content: Any) -> None:
    ctx = TriggerContext(connection)
    with pytest.raises(TypeError):
        await ctx.deliver(content)
    assert connection.sent == []


# --- send_when_idle ----------------------------------------------------------------


async def test_send_when_idle_sends_at_once_when_idle(connection: FakeConnection) -> None:
    await asyncio.wait_for(TriggerContext(connection).send_when_idle("idle now"), timeout=2.0)
    assert connection.sent == ["idle now"]


async def test_send_when_idle_never_sends_mid_turn_and_sends_once_idle(
    busy_connection: FakeConnection,
) -> None:
    ctx = TriggerContext(busy_connection)
    task = asyncio.ensure_future(ctx.send_when_idle("after the turn"))
    try:
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        assert not task.done()
        busy_connection.set_idle(True)
        await asyncio.wait_for(task, timeout=5.0)
        assert busy_connection.sent == ["after the turn"]
    finally:
        task.cancel()


async def test_send_when_idle_waits_again_when_a_turn_begins_before_it_resumes() -> None:
    # The agent goes idle, then busy again before the waiting task resumes (a
    # user's prompt came first): the send waits for that turn too. (Seen with
    # the real Antigravity agent: a message sent into a turn just begun.)
    connection = FakeConnection(idle=False)
    task = asyncio.ensure_future(TriggerContext(connection).send_when_idle("between turns"))
    try:
        await wait_for(lambda: connection.waits == 1)
        connection.set_idle(True)  # the turn ends...
        connection.set_idle(False)  # ...and the next begins, in the same step
        await wait_for(lambda: connection.waits == 2)
        assert connection.sent == []
        connection.set_idle(True)
        await asyncio.wait_for(task, timeout=5.0)
        assert connection.sent == ["between turns"]
    finally:
        task.cancel()


async def test_send_when_idle_cancelled_while_waiting_sends_nothing(
    busy_connection: FakeConnection,
) -> None:
    task = asyncio.ensure_future(TriggerContext(busy_connection).send_when_idle("never"))
    await wait_for(lambda: busy_connection.waits == 1, what="the send to wait for idle")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    busy_connection.set_idle(True)
    await asyncio.sleep(0.05)  # time for a wrong send to show up (a negative)
    assert busy_connection.sent == []


# --- is_idle -----------------------------------------------------------------------


@pytest.mark.parametrize("idle", [True, False])
def test_is_idle_is_a_real_bool(idle: bool) -> None:
    assert type(TriggerContext(FakeConnection(idle=idle)).is_idle) is bool
    assert type(TriggerContext(MethodIdleConnection(idle=idle)).is_idle) is bool


def test_is_idle_is_read_as_a_property(connection: FakeConnection) -> None:
    ctx = TriggerContext(connection)
    assert ctx.is_idle is True
    connection.set_idle(False)
    assert ctx.is_idle is False


# --- deliver -----------------------------------------------------------------------


async def test_deliver_on_a_bare_context_waits_for_idle(busy_connection: FakeConnection) -> None:
    """A context not owned by any trigger follows the default delivery, WAIT_IDLE."""
    task = asyncio.ensure_future(TriggerContext(busy_connection).deliver("queued"))
    try:
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await asyncio.wait_for(task, timeout=5.0)
        assert busy_connection.sent == ["queued"]
    finally:
        task.cancel()


class ImmediateDeliverer(Trigger):
    name = "immediate-deliverer"
    delivery = TriggerDelivery.SEND_IMMEDIATELY

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.deliver("urgent")


class PoliteDeliverer(Trigger):
    name = "polite-deliverer"
    delivery = TriggerDelivery.WAIT_IDLE

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.deliver("when you are free")


class DefaultDeliverer(Trigger):
    name = "default-deliverer"

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.deliver("default delivery")


async def test_deliver_sends_immediately_for_a_send_immediately_trigger(
    busy_connection: FakeConnection,
) -> None:
    async with TriggerRunner([ImmediateDeliverer()], busy_connection):
        await wait_for(lambda: busy_connection.sent == ["urgent"])
    assert busy_connection.is_idle is False


async def test_deliver_waits_for_idle_for_a_wait_idle_trigger(
    busy_connection: FakeConnection,
) -> None:
    async with TriggerRunner([PoliteDeliverer()], busy_connection):
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await wait_for(lambda: busy_connection.sent == ["when you are free"])


async def test_deliver_waits_for_idle_for_a_trigger_with_default_delivery(
    busy_connection: FakeConnection,
) -> None:
    async with TriggerRunner([DefaultDeliverer()], busy_connection):
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await wait_for(lambda: busy_connection.sent == ["default delivery"])


async def test_deliver_waits_for_idle_for_a_plain_function_trigger(
    busy_connection: FakeConnection,
) -> None:
    async def plain(ctx: TriggerContext) -> None:
        await ctx.deliver("from a function")

    async with TriggerRunner([plain], busy_connection):
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await wait_for(lambda: busy_connection.sent == ["from a function"])


async def test_each_trigger_delivers_by_its_own_delivery(busy_connection: FakeConnection) -> None:
    async with TriggerRunner([PoliteDeliverer(), ImmediateDeliverer()], busy_connection):
        await wait_for(lambda: busy_connection.sent == ["urgent"])
        assert await stays_false(lambda: len(busy_connection.sent) > 1, duration=0.1)
        busy_connection.set_idle(True)
        await wait_for(lambda: busy_connection.sent == ["urgent", "when you are free"])
