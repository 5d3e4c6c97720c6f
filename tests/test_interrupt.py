"""docs/contract.md §8: `TriggerDelivery.INTERRUPT` — `ctx.deliver(content)` awaits
the connection's `async cancel()` (the agent's turn is stopped), then sends; a
connection without `cancel` makes such a delivery raise a `TypeError` naming
`cancel`. For native triggers (`delivery=`) and `Trigger` subclasses (the
`delivery` class attribute)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from agent_triggers import (
    Trigger,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    after,
    at,
    cron,
    every,
    on_file_change,
)
from agent_triggers._core import NativeTrigger

from conftest import (
    WATCHED,
    FakeConnection,
    error_records,
    running,
    stays_false,
    wait_for,
)


class CancellableConnection(FakeConnection):
    """A full connection with `async cancel()`: it records, in `events`, each
    cancel begun and ended and each send, in order. `hold_cancel()` makes the
    next cancels wait until `release_cancel()`. A cancel ends the agent's turn
    only if `cancel_ends_turn` (else the agent stays as it was)."""

    def __init__(self, *, idle: bool = True, cancel_ends_turn: bool = False) -> None:
        super().__init__(idle=idle)
        self.events: list[str] = []
        self.cancels = 0
        self.cancel_ends_turn = cancel_ends_turn
        self._gate: anyio.Event | None = None

    def hold_cancel(self) -> None:
        self._gate = anyio.Event()

    def release_cancel(self) -> None:
        if self._gate is not None:
            self._gate.set()

    async def cancel(self) -> None:
        self.cancels += 1
        self.events.append("cancel")
        if self._gate is not None:
            await self._gate.wait()
        if self.cancel_ends_turn:
            self.set_idle(True)
        self.events.append("cancelled")

    async def send_trigger(self, content: str) -> None:
        self.events.append(f"send {content}")
        await super().send_trigger(content)


class CancellableAntigravityConnection:
    """Antigravity's connection shape (`send_trigger_notification`) with `cancel`."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def cancel(self) -> None:
        self.events.append("cancel")

    async def send_trigger_notification(self, content: str) -> None:
        self.events.append(f"notify {content}")


def deliverer(text: str) -> Callable[..., Awaitable[None]]:
    """A native callback that delivers `text` once per call (any kind's call)."""

    async def deliver(ctx: TriggerContext, *changes: object) -> None:
        await ctx.deliver(text)

    return deliver


class Interrupting(Trigger):
    name = "interrupting"
    delivery = TriggerDelivery.INTERRUPT

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.deliver("stop and read this")


# --- the member ---------------------------------------------------------------------------


def test_interrupt_is_a_delivery_with_value_interrupt() -> None:
    assert TriggerDelivery.INTERRUPT.value == "interrupt"
    assert TriggerDelivery("interrupt") is TriggerDelivery.INTERRUPT
    as_str: str = TriggerDelivery.INTERRUPT
    assert as_str == "interrupt", "a str enum, as the other members"
    assert {member.value for member in TriggerDelivery} == {
        "wait_idle",
        "send_immediately",
        "interrupt",
    }


LATER = dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc)
FACTORIES: dict[str, Callable[[Any], NativeTrigger]] = {
    "every": lambda delivery: every(1, deliverer("x"), delivery=delivery),
    "cron": lambda delivery: cron("* * * * *", deliverer("x"), delivery=delivery),
    "after": lambda delivery: after(1, deliverer("x"), delivery=delivery),
    "at": lambda delivery: at(LATER, deliverer("x"), delivery=delivery),
    "on_file_change": lambda delivery: on_file_change(WATCHED, deliverer("x"), delivery=delivery),
}


@pytest.mark.parametrize("delivery", [TriggerDelivery.INTERRUPT, "interrupt"])
@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_every_native_factory_takes_interrupt_as_its_delivery(
    factory: Callable[[Any], NativeTrigger], delivery: Any
) -> None:
    assert factory(delivery).delivery is TriggerDelivery.INTERRUPT


# --- deliver: cancel, then send -----------------------------------------------------------


async def test_deliver_of_a_native_trigger_awaits_cancel_then_sends() -> None:
    connection = CancellableConnection()
    trig = after(0, deliverer("urgent"), delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: connection.sent == ["urgent"])
    assert connection.events == ["cancel", "cancelled", "send urgent"]


async def test_deliver_of_a_trigger_subclass_awaits_cancel_then_sends() -> None:
    connection = CancellableConnection()
    async with running(TriggerRunner([Interrupting()], connection)):
        await wait_for(lambda: connection.sent == ["stop and read this"])
    assert connection.events == ["cancel", "cancelled", "send stop and read this"]


async def test_deliver_sends_only_once_cancel_has_returned() -> None:
    connection = CancellableConnection()
    connection.hold_cancel()
    trig = after(0, deliverer("after the cancel"), delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: connection.cancels == 1, what="cancel() to be awaited")
        assert await stays_false(lambda: connection.sent, duration=0.15)
        connection.release_cancel()
        await wait_for(lambda: connection.sent == ["after the cancel"])
    assert connection.events == ["cancel", "cancelled", "send after the cancel"]


async def test_deliver_interrupts_a_busy_agent_and_sends_without_waiting_for_idle() -> None:
    # The agent is mid-turn and the cancel does not make it idle: the message is
    # sent after the cancel all the same.
    connection = CancellableConnection(idle=False)
    trig = after(0, deliverer("now"), delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: connection.sent == ["now"])
    assert connection.events == ["cancel", "cancelled", "send now"]
    assert connection.is_idle is False


async def test_deliver_interrupts_again_on_each_call_of_an_every() -> None:
    connection = CancellableConnection(idle=False, cancel_ends_turn=True)
    calls: list[int] = []

    async def interrupt(ctx: TriggerContext) -> None:
        calls.append(1)
        await ctx.deliver(f"tick {len(calls)}")
        connection.set_idle(False)  # the agent starts a turn on the message

    trig = every(0.02, interrupt, delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: len(connection.sent) >= 3)
    n = len(connection.sent)
    assert connection.events[: 3 * n] == [
        event for i in range(1, n + 1) for event in ("cancel", "cancelled", f"send tick {i}")
    ]


async def test_deliver_goes_through_send_trigger_notification_after_cancel() -> None:
    connection = CancellableAntigravityConnection()
    trig = after(0, deliverer("antigravity"), delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: len(connection.events) >= 2)
    assert connection.events == ["cancel", "notify antigravity"]


async def test_ctx_delivery_is_interrupt_during_an_interrupt_trigger() -> None:
    connection = CancellableConnection()
    seen: list[TriggerDelivery] = []

    async def look(ctx: TriggerContext) -> None:
        seen.append(ctx.delivery)

    class Looking(Trigger):
        name = "looking"
        delivery = TriggerDelivery.INTERRUPT

        async def run(self, ctx: TriggerContext) -> None:
            seen.append(ctx.delivery)

    triggers: list[Any] = [after(0, look, delivery=TriggerDelivery.INTERRUPT), Looking()]
    async with running(TriggerRunner(triggers, connection)):
        await wait_for(lambda: len(seen) == 2)
    assert seen == [TriggerDelivery.INTERRUPT, TriggerDelivery.INTERRUPT]
    assert connection.cancels == 0, "reading the delivery interrupts nothing"


async def test_send_and_send_when_idle_of_an_interrupt_trigger_do_not_cancel() -> None:
    connection = CancellableConnection()

    async def plain_sends(ctx: TriggerContext) -> None:
        await ctx.send("send")
        await ctx.send_when_idle("send_when_idle")

    trig = after(0, plain_sends, delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: connection.sent == ["send", "send_when_idle"])
    assert connection.cancels == 0


@pytest.mark.parametrize("delivery", [TriggerDelivery.WAIT_IDLE, TriggerDelivery.SEND_IMMEDIATELY])
async def test_other_deliveries_never_call_cancel(delivery: TriggerDelivery) -> None:
    connection = CancellableConnection()

    class Polite(Trigger):
        name = "polite"

        async def run(self, ctx: TriggerContext) -> None:
            await ctx.deliver("class-based")

    Polite.delivery = delivery
    triggers: list[Any] = [after(0, deliverer("native"), delivery=delivery), Polite()]
    async with running(TriggerRunner(triggers, connection)):
        await wait_for(lambda: sorted(connection.sent) == ["class-based", "native"])
    assert connection.cancels == 0


async def test_non_str_content_is_a_type_error_and_nothing_is_cancelled() -> None:
    connection = CancellableConnection()
    errors: list[BaseException] = []

    async def bad_content(ctx: TriggerContext) -> None:
        hostile: Any = 42
        try:
            await ctx.deliver(hostile)
        except TypeError as error:
            errors.append(error)

    trig = after(0, bad_content, delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: errors)
    assert "content" in str(errors[0])
    assert connection.cancels == 0
    assert connection.sent == []


# --- a connection without cancel ----------------------------------------------------------


def test_a_connection_without_cancel_still_builds_a_runner_and_a_context(
    connection: FakeConnection,
) -> None:
    TriggerContext(connection)
    runner = TriggerRunner(
        [after(3600, deliverer("x"), delivery=TriggerDelivery.INTERRUPT), Interrupting()],
        connection,
    )
    assert [s.name for s in runner.stats()][1] == "interrupting"


async def test_deliver_without_cancel_raises_a_type_error_naming_cancel_native(
    connection: FakeConnection,
) -> None:
    errors: list[BaseException] = []

    async def try_to_interrupt(ctx: TriggerContext) -> None:
        try:
            await ctx.deliver("never sent")
        except TypeError as error:
            errors.append(error)

    trig = after(0, try_to_interrupt, delivery=TriggerDelivery.INTERRUPT)
    async with running(TriggerRunner([trig], connection)):
        await wait_for(lambda: errors, what="deliver() to raise")
    assert "cancel" in str(errors[0])
    assert connection.sent == []


async def test_deliver_without_cancel_raises_a_type_error_naming_cancel_trigger_subclass(
    connection: FakeConnection,
) -> None:
    errors: list[BaseException] = []

    class TryToInterrupt(Trigger):
        name = "try-to-interrupt"
        delivery = TriggerDelivery.INTERRUPT

        async def run(self, ctx: TriggerContext) -> None:
            try:
                await ctx.deliver("never sent")
            except TypeError as error:
                errors.append(error)
            await ctx.send("sent plainly")  # the context still works

    async with running(TriggerRunner([TryToInterrupt()], connection)):
        await wait_for(lambda: connection.sent == ["sent plainly"])
    assert len(errors) == 1
    assert "cancel" in str(errors[0])


async def test_an_uncaught_missing_cancel_is_logged_and_the_others_go_on(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    ticks: list[int] = []

    async def tick(ctx: TriggerContext) -> None:
        ticks.append(1)

    triggers: list[Any] = [
        after(0, deliverer("lost"), name="interrupter", delivery=TriggerDelivery.INTERRUPT),
        every(0.02, tick, name="bystander"),
    ]
    async with running(TriggerRunner(triggers, connection)):
        await wait_for(lambda: error_records(caplog))
        seen = len(ticks)
        await wait_for(lambda: len(ticks) >= seen + 3, what="the bystander to go on")
    (record,) = error_records(caplog)
    assert "interrupter" in record.getMessage()
    assert "cancel" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is TypeError
    assert connection.sent == []
