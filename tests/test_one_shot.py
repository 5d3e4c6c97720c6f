"""docs/contract.md §6: after and at — one call, then the trigger ends."""

from __future__ import annotations

import datetime as dt

import anyio
import pytest

from agent_triggers import TriggerContext, TriggerDelivery, TriggerRunner, after, at

from conftest import FakeConnection, bounded, stays_false, wait_for


async def noop(ctx: object) -> None:
    pass


def utc_in(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


def test_names_and_delivery() -> None:
    assert after(30, noop).name == "after_30s"
    assert after(dt.timedelta(minutes=1), noop).name == "after_60s"
    when = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    assert at(when, noop).name == "at_2030-01-01T09:00:00+00:00"
    assert at(when, noop, name="new-year").__name__ == "new-year"
    assert after(1, noop).delivery is TriggerDelivery.WAIT_IDLE


@pytest.mark.parametrize("delay", [-1, -0.001, float("nan"), float("inf"), dt.timedelta(-1)])
def test_negative_or_non_finite_delays_are_value_errors(delay: object) -> None:
    with pytest.raises(ValueError, match="delay"):
        after(delay, noop)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", ["1", None, True])
def test_non_numeric_delays_are_type_errors(delay: object) -> None:
    with pytest.raises(TypeError, match="delay"):
        after(delay, noop)  # type: ignore[arg-type]


def test_at_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        at(dt.datetime.now(), noop)  # naive
    with pytest.raises(TypeError, match="datetime"):
        at(1700000000, noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="datetime"):
        at(dt.date.today(), noop)  # type: ignore[arg-type]


async def test_after_calls_once_then_the_trigger_ends(connection: FakeConnection) -> None:
    async def once(ctx: TriggerContext) -> None:
        await ctx.send("once")

    runner = TriggerRunner([after(0.05, once)], connection)
    async with runner:
        await wait_for(lambda: connection.sent)
        await wait_for(lambda: not runner.is_running)
        assert await stays_false(lambda: len(connection.sent) > 1, duration=0.2)
        assert connection.sent == ["once"]


async def test_after_zero_fires_at_once(connection: FakeConnection) -> None:
    async def once(ctx: TriggerContext) -> None:
        await ctx.send("now")

    async with TriggerRunner([after(0, once)], connection):
        await wait_for(lambda: connection.sent == ["now"])


async def test_at_calls_once_at_its_time_or_at_once_when_past(connection: FakeConnection) -> None:
    async def soon(ctx: TriggerContext) -> None:
        await ctx.send("soon")

    async def late(ctx: TriggerContext) -> None:
        await ctx.send("late")

    triggers = [at(utc_in(0.3), soon), at(utc_in(-3600), late)]
    async with TriggerRunner(triggers, connection):
        await wait_for(lambda: "late" in connection.sent, timeout=2)
        assert "soon" not in connection.sent
        await wait_for(lambda: "soon" in connection.sent, timeout=5)
        assert await stays_false(lambda: len(connection.sent) > 2, duration=0.2)


async def test_a_pending_one_shot_is_cancelled_by_stop(connection: FakeConnection) -> None:
    async def never(ctx: TriggerContext) -> None:
        await ctx.send("too late")

    async with TriggerRunner([after(3600, never)], connection):
        await anyio.sleep(0.05)  # time for a wrong early call to show up (a negative)
    assert connection.sent == []


async def test_trig_ctx_returns_after_its_one_call() -> None:
    seen: list[object] = []

    async def record(ctx: object) -> None:
        seen.append(ctx)

    await bounded(after(0.01, record)("ctx"), 5)
    assert seen == ["ctx"]


async def test_at_fires_once_per_trigger_even_across_restarts(
    connection: FakeConnection,
) -> None:
    async def once(ctx: TriggerContext) -> None:
        await ctx.send("at")

    runner = TriggerRunner([at(utc_in(-1), once)], connection)
    for _ in range(3):
        await runner.start()
        # Time for the call to come (first start) or a wrong repeat (later ones).
        await anyio.sleep(0.1)
        await runner.stop()
    assert connection.sent == ["at"]


async def test_after_counts_from_each_start(connection: FakeConnection) -> None:
    async def once(ctx: TriggerContext) -> None:
        await ctx.send("after")

    runner = TriggerRunner([after(0, once)], connection)
    for n in range(1, 4):
        await runner.start()
        await wait_for(lambda: len(connection.sent) == n)  # noqa: B023
        await runner.stop()
    assert connection.sent == ["after"] * 3
