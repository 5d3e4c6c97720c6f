"""docs/contract.md §4: what counts as a trigger, and the `@trigger` decorator."""

from __future__ import annotations

import inspect
from collections.abc import Coroutine, Generator
from typing import Any

import pytest

from agent_triggers import (
    Trigger,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    every,
    trigger,
)

from conftest import FakeConnection, wait_for

ASYNC_MESSAGE = "Trigger must be an async function"
ARITY_MESSAGE = "Trigger must accept exactly one parameter"


async def send_marker(ctx: TriggerContext, marker: str) -> None:
    await ctx.send(marker)


# --- kind 1: async callables ---------------------------------------------------


async def test_async_function_trigger_runs_with_a_context(connection: FakeConnection) -> None:
    received: list[object] = []

    async def greet(ctx: TriggerContext) -> None:
        received.append(ctx)
        await ctx.send("hello from a function")

    async with TriggerRunner([greet], connection):
        await wait_for(lambda: connection.sent == ["hello from a function"])
    assert len(received) == 1
    assert isinstance(received[0], TriggerContext)


async def test_lambda_returning_a_coroutine_is_a_trigger(connection: FakeConnection) -> None:
    async with TriggerRunner([lambda ctx: send_marker(ctx, "from a lambda")], connection):
        await wait_for(lambda: connection.sent == ["from a lambda"])


class AsyncCallable:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: TriggerContext) -> None:
        self.calls += 1
        await ctx.send("from a callable object")


async def test_instance_with_async_dunder_call_is_a_trigger(connection: FakeConnection) -> None:
    callable_trigger = AsyncCallable()
    async with TriggerRunner([callable_trigger], connection):
        await wait_for(lambda: connection.sent == ["from a callable object"])
    assert callable_trigger.calls == 1


class CustomAwaitable:
    """An awaitable that is not a coroutine."""

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, None, None]:
        return self._coro.__await__()


async def test_callable_returning_a_non_coroutine_awaitable_is_a_trigger(
    connection: FakeConnection,
) -> None:
    def make_awaitable(ctx: TriggerContext) -> CustomAwaitable:
        return CustomAwaitable(send_marker(ctx, "from an awaitable"))

    async with TriggerRunner([make_awaitable], connection):
        await wait_for(lambda: connection.sent == ["from an awaitable"])


# --- kind 2: Trigger subclasses ------------------------------------------------


class Heartbeat(Trigger):
    name = "heartbeat"
    delivery = TriggerDelivery.SEND_IMMEDIATELY

    def __init__(self) -> None:
        self.contexts: list[TriggerContext] = []

    async def run(self, ctx: TriggerContext) -> None:
        self.contexts.append(ctx)
        await ctx.send("beat")


class Quiet(Trigger):
    name = "quiet"

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.send("quiet")


def test_trigger_subclass_has_name_and_delivery_class_attributes() -> None:
    assert Heartbeat.name == "heartbeat"
    assert Heartbeat.delivery == TriggerDelivery.SEND_IMMEDIATELY
    assert Heartbeat().name == "heartbeat"
    assert Heartbeat().delivery == TriggerDelivery.SEND_IMMEDIATELY


def test_trigger_subclass_delivery_defaults_to_wait_idle() -> None:
    assert Quiet.delivery == TriggerDelivery.WAIT_IDLE
    assert Quiet().delivery == TriggerDelivery.WAIT_IDLE


async def test_trigger_subclass_instance_runs_its_run_method(connection: FakeConnection) -> None:
    heartbeat = Heartbeat()
    async with TriggerRunner([heartbeat], connection):
        await wait_for(lambda: connection.sent == ["beat"])
    assert len(heartbeat.contexts) == 1
    assert isinstance(heartbeat.contexts[0], TriggerContext)


async def test_trigger_subclasses_and_functions_mix_in_one_runner(
    connection: FakeConnection,
) -> None:
    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("function")

    async with TriggerRunner([Heartbeat(), greet, Quiet()], connection):
        await wait_for(lambda: sorted(connection.sent) == ["beat", "function", "quiet"])


# --- @trigger ------------------------------------------------------------------------


def test_bare_decorator_marks_and_returns_the_function() -> None:
    async def tick(ctx: TriggerContext) -> None:
        pass

    decorated = trigger(tick)
    assert decorated is tick
    assert getattr(tick, "__is_trigger__", None) is True


def test_decorator_with_name_and_delivery_marks_and_returns_the_function() -> None:
    async def tick(ctx: TriggerContext) -> None:
        pass

    decorated = trigger(name="ticker", delivery=TriggerDelivery.SEND_IMMEDIATELY)(tick)
    assert decorated is tick
    assert getattr(tick, "__is_trigger__", None) is True


@pytest.mark.parametrize(
    "given", [TriggerDelivery.SEND_IMMEDIATELY, "send_immediately", "bogus", 3, None]
)
def test_decorator_takes_delivery_as_every_native_trigger_does(given: Any) -> None:
    # A member or its value, as `every(..., delivery=...)`; anything else is the
    # same error, naming `delivery`.
    async def tick(ctx: TriggerContext) -> None:
        pass

    try:
        expected: object = every(1, tick, delivery=given).delivery
    except (TypeError, ValueError) as error:
        with pytest.raises(type(error), match=r"^delivery"):
            trigger(delivery=given)
        return
    assert getattr(trigger(delivery=given)(tick), "delivery", TriggerDelivery.WAIT_IDLE) is expected


def test_decorator_with_name_only_marks_and_returns_the_function() -> None:
    async def tick(ctx: TriggerContext) -> None:
        pass

    decorated = trigger(name="ticker")(tick)
    assert decorated is tick
    assert getattr(tick, "__is_trigger__", None) is True


def test_decorator_in_at_syntax() -> None:
    @trigger
    async def bare(ctx: TriggerContext) -> None:
        pass

    @trigger(name="configured", delivery=TriggerDelivery.WAIT_IDLE)
    async def configured(ctx: TriggerContext) -> None:
        pass

    assert getattr(bare, "__is_trigger__", None) is True
    assert getattr(configured, "__is_trigger__", None) is True
    assert inspect.iscoroutinefunction(bare)
    assert inspect.iscoroutinefunction(configured)


async def test_decorated_function_runs_under_a_runner(connection: FakeConnection) -> None:
    @trigger
    async def decorated(ctx: TriggerContext) -> None:
        await ctx.send("decorated")

    async with TriggerRunner([decorated], connection):
        await wait_for(lambda: connection.sent == ["decorated"])


def sync_one_param(ctx: TriggerContext) -> None:
    pass


def sync_no_param() -> None:
    pass


async def async_no_param() -> None:
    pass


async def async_two_params(ctx: TriggerContext, other: object) -> None:
    pass


def test_non_async_function_is_rejected() -> None:
    bad: Any = sync_one_param
    with pytest.raises(ValueError, match=ASYNC_MESSAGE) as excinfo:
        trigger(bad)
    assert str(excinfo.value) == ASYNC_MESSAGE
    assert not hasattr(sync_one_param, "__is_trigger__")


def test_non_async_function_is_rejected_by_the_configured_decorator() -> None:
    bad: Any = sync_one_param
    with pytest.raises(ValueError, match=ASYNC_MESSAGE) as excinfo:
        trigger(name="sync", delivery=TriggerDelivery.SEND_IMMEDIATELY)(bad)
    assert str(excinfo.value) == ASYNC_MESSAGE


def test_non_async_function_with_wrong_arity_reports_not_async() -> None:
    bad: Any = sync_no_param
    with pytest.raises(ValueError, match=ASYNC_MESSAGE) as excinfo:
        trigger(bad)
    assert str(excinfo.value) == ASYNC_MESSAGE


def test_lambda_is_rejected_as_not_async() -> None:
    bad: Any = lambda ctx: None  # noqa: E731  # pyright: ignore[reportUnknownLambdaType, reportUnknownVariableType]
    with pytest.raises(ValueError, match=ASYNC_MESSAGE) as excinfo:
        trigger(bad)
    assert str(excinfo.value) == ASYNC_MESSAGE


@pytest.mark.parametrize(
    "function", [async_no_param, async_two_params], ids=["no-params", "two-params"]
)
def test_async_function_with_wrong_arity_is_rejected(function: Any) -> None:
    with pytest.raises(ValueError, match=ARITY_MESSAGE) as excinfo:
        trigger(function)
    assert str(excinfo.value) == ARITY_MESSAGE
    assert not hasattr(function, "__is_trigger__")


@pytest.mark.parametrize(
    "function", [async_no_param, async_two_params], ids=["no-params", "two-params"]
)
def test_async_function_with_wrong_arity_is_rejected_by_the_configured_decorator(
    function: Any,
) -> None:
    with pytest.raises(ValueError, match=ARITY_MESSAGE) as excinfo:
        trigger(name="wrong")(function)
    assert str(excinfo.value) == ARITY_MESSAGE
