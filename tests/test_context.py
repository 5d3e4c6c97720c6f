"""docs/contract.md §3: `TriggerContext`, the handle each trigger sends through, and
the content it sends: any `str` arrives exactly, in order (property-based)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_triggers import Trigger, TriggerContext, TriggerDelivery, TriggerRunner, after

from conftest import (
    QUICK,
    RUNNING,
    FakeConnection,
    Host,
    MethodIdleConnection,
    backends,
    bounded,
    cancelled,
    rejected,
    run_on,
    stays_false,
    until_set,
    wait_for,
)

NOT_STR = [5, b"bytes", None, ["a"]]
NOT_STR_IDS = ["int", "bytes", "None", "list"]


@asynccontextmanager
async def in_background(awaitable: Awaitable[None]) -> AsyncGenerator[anyio.Event, None]:
    """Await `awaitable` in a task of the running host; yields an event set once it
    has returned. Leaving the block cancels it if it has not."""
    returned = anyio.Event()

    async def await_it() -> None:
        await awaitable
        returned.set()

    async with anyio.create_task_group() as group:
        group.start_soon(await_it)
        try:
            yield returned
        finally:
            group.cancel_scope.cancel()


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
    await bounded(ctx.send("interrupt"), timeout=2.0)
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
    await bounded(TriggerContext(connection).send_when_idle("idle now"), timeout=2.0)
    assert connection.sent == ["idle now"]


async def test_send_when_idle_never_sends_mid_turn_and_sends_once_idle(
    busy_connection: FakeConnection,
) -> None:
    ctx = TriggerContext(busy_connection)
    async with in_background(ctx.send_when_idle("after the turn")) as returned:
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        assert not returned.is_set()
        busy_connection.set_idle(True)
        await until_set(returned, timeout=5.0, what="send_when_idle to return")
        assert busy_connection.sent == ["after the turn"]


async def test_send_when_idle_waits_again_when_a_turn_begins_before_it_resumes() -> None:
    # The agent goes idle, then busy again before the waiting task resumes (a
    # user's prompt came first): the send waits for that turn too. (Seen with
    # the real Antigravity agent: a message sent into a turn just begun.)
    connection = FakeConnection(idle=False)
    sending = TriggerContext(connection).send_when_idle("between turns")
    async with in_background(sending) as returned:
        await wait_for(lambda: connection.waits == 1)
        connection.set_idle(True)  # the turn ends...
        connection.set_idle(False)  # ...and the next begins, in the same step
        await wait_for(lambda: connection.waits == 2)
        assert connection.sent == []
        connection.set_idle(True)
        await until_set(returned, timeout=5.0, what="send_when_idle to return")
        assert connection.sent == ["between turns"]


async def test_send_when_idle_cancelled_while_waiting_sends_nothing(
    busy_connection: FakeConnection,
) -> None:
    scope = anyio.CancelScope()
    raised: list[BaseException] = []
    ended = anyio.Event()

    async def send() -> None:
        with scope:
            try:
                await TriggerContext(busy_connection).send_when_idle("never")
            except BaseException as exc:
                raised.append(exc)
                raise
        ended.set()

    async with anyio.create_task_group() as group:
        group.start_soon(send)
        await wait_for(lambda: busy_connection.waits == 1, what="the send to wait for idle")
        scope.cancel()
        await until_set(ended, what="the cancelled send to end")
    # The host's cancellation came out of send_when_idle, as itself, up to its scope.
    assert [type(exc) for exc in raised] == [cancelled()]
    assert scope.cancelled_caught
    busy_connection.set_idle(True)
    await anyio.sleep(0.05)  # time for a wrong send to show up (a negative)
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
    async with in_background(TriggerContext(busy_connection).deliver("queued")) as returned:
        assert await stays_false(lambda: busy_connection.sent, duration=0.15)
        busy_connection.set_idle(True)
        await until_set(returned, timeout=5.0, what="deliver to return")
        assert busy_connection.sent == ["queued"]


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


# --- content: ctx.send, ctx.send_when_idle, ctx.deliver ---------------------------------

SEND_METHODS = ["send", "send_when_idle", "deliver"]
# Every code point: NUL, lone surrogates (valid in a Python str, so delivered as they
# are), astral characters.
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(["", "\0", "\ud800", "\udfff", "\ud83d\ude00", "😀", "\U0010ffff", "\r\n"]),
)


async def push_each(ctx: TriggerContext, messages: list[str]) -> None:
    for message in messages:
        await ctx.send(message)
        await ctx.send_when_idle(message)
        await ctx.deliver(message)


@pytest.mark.parametrize("host", backends())
@RUNNING
@given(messages=st.lists(hostile_text, max_size=8))
@example(messages=["", "\0", "a\0b", "\ud800", "\udc00\ud800", "😀", "\U0010ffff"])
def test_hostile_strings_arrive_exactly_in_order(host: Host, messages: list[str]) -> None:
    expected = [message for message in messages for _ in SEND_METHODS]

    async def main() -> None:
        python_side, native_side = FakeConnection(), FakeConnection()

        async def push(ctx: TriggerContext) -> None:
            await push_each(ctx, messages)

        runners = [
            TriggerRunner([push], python_side),
            TriggerRunner([after(0, push, delivery=TriggerDelivery.SEND_IMMEDIATELY)], native_side),
        ]
        for runner in runners:
            await runner.start()
        try:
            await wait_for(lambda: not any(runner.is_running for runner in runners), timeout=10)
        finally:
            for runner in runners:
                await runner.stop()
        assert python_side.sent == expected
        assert native_side.sent == expected

    run_on(host, main)


def digest(text: str) -> tuple[int, str]:
    return len(text), hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


async def test_a_50_mb_message_among_hostile_ones_arrives_byte_exact_in_order(
    connection: FakeConnection,
) -> None:
    big = "x\0" * (25 * 2**20 - 2) + "😀"  # NULs and an astral character: 50 MiB of UTF-8
    assert len(big.encode("utf-8")) == 50 * 2**20
    messages = ["", "\0", big, "\ud800", "😀\U0010ffff", "end"]
    expected = [digest(message) for message in messages for _ in SEND_METHODS]

    async def push(ctx: TriggerContext) -> None:
        await push_each(ctx, messages)

    async with TriggerRunner([push], connection) as runner:
        await wait_for(lambda: not runner.is_running, timeout=30)
    assert all(type(sent) is str for sent in connection.sent)
    assert [digest(sent) for sent in connection.sent] == expected


non_str_content = st.one_of(
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=2), max_size=2),
)


@QUICK
@given(content=non_str_content, method=st.sampled_from(SEND_METHODS))
@example(content=b"text", method="send")
@example(content=None, method="send_when_idle")
@example(content=0, method="deliver")
def test_non_str_content_is_a_type_error_naming_content_raised_at_the_call(
    content: Any, method: str
) -> None:
    connection = FakeConnection()
    send: Callable[[Any], Awaitable[None]] = getattr(TriggerContext(connection), method)
    with rejected(TypeError, "content", type(content).__name__):
        send(content)  # raised at once, before anything is awaited
    assert connection.sent == []


class Text(str):
    pass


@pytest.mark.parametrize("method", SEND_METHODS)
async def test_a_str_subclass_is_content(connection: FakeConnection, method: str) -> None:
    send: Callable[[str], Awaitable[None]] = getattr(TriggerContext(connection), method)
    await send(Text("subclassed\0😀"))
    assert connection.sent == ["subclassed\0😀"]
    assert isinstance(connection.sent[0], str)
