"""docs/contract.md §6: cron — 5- and 6-field expressions, IANA time zones, wall-clock calls."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import anyio
import pytest

from agent_triggers import TriggerContext, TriggerDelivery, TriggerRunner, cron

from conftest import FakeConnection, cancelled, error_records, wait_for


async def noop(ctx: object) -> None:
    pass


def test_defaults_and_attributes() -> None:
    trig = cron("*/5 * * * *", noop)
    assert trig.name == trig.__name__ == "cron_*/5 * * * *"
    assert trig.expression == "*/5 * * * *"
    assert trig.tz is None
    assert trig.delivery is TriggerDelivery.WAIT_IDLE
    named = cron("0 30 9 * * MON-FRI", noop, tz="Europe/Paris", name="standup")
    assert (named.name, named.tz) == ("standup", "Europe/Paris")


def test_a_zoneinfo_is_accepted_as_tz() -> None:
    assert cron("0 9 * * *", noop, tz=zoneinfo.ZoneInfo("Asia/Tokyo")).tz == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * *", "3 fields"),
        ("* * * * * * * *", "8 fields"),
        ("61 * * * *", "invalid cron expression"),
        ("* * 32 * *", "invalid cron expression"),
        ("not a cron", "fields"),
    ],
)
def test_invalid_expressions_raise_value_error_with_the_reason(
    expression: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        cron(expression, noop)


def test_bad_argument_types_and_zones() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        cron("* * * * *", noop, tz="Mars/Olympus_Mons")
    with pytest.raises(TypeError, match="tz"):
        cron("* * * * *", noop, tz=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expression"):
        cron(5, noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback"):
        cron("* * * * *", "noop")  # type: ignore[arg-type]


async def test_an_every_second_schedule_calls_on_wall_clock_seconds(
    connection: FakeConnection,
) -> None:
    """A real 6-field schedule: calls come about once a second, none burst."""
    times: list[float] = []

    async def tick(ctx: TriggerContext) -> None:
        times.append(time.time())
        await ctx.send("tick")

    async with TriggerRunner([cron("* * * * * *", tick, tz="UTC")], connection):
        await wait_for(lambda: len(times) >= 3, timeout=10)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap > 0.5 for gap in gaps), gaps
    # Each call lands just after a whole second (generous: a noisy machine).
    assert all(t % 1.0 < 0.5 for t in times), [t % 1.0 for t in times]
    assert connection.sent[:3] == ["tick"] * 3


async def test_a_raising_callback_is_logged_and_the_schedule_goes_on(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def flaky(ctx: TriggerContext) -> None:
        calls.append(1)
        raise RuntimeError("cron callback failed")

    async with TriggerRunner([cron("* * * * * *", flaky, name="every-second")], connection):
        await wait_for(lambda: len(calls) >= 2, timeout=10)
    records = error_records(caplog)
    assert records
    assert "every-second" in records[0].getMessage()
    assert "cron callback failed" in records[0].getMessage()


async def test_trig_ctx_runs_it_on_its_own() -> None:
    seen: list[object] = []

    async def record(ctx: object) -> None:
        seen.append(ctx)

    ended: list[str] = []

    async def run_schedule(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await cron("* * * * * *", record)("ctx")
            except cancelled():
                ended.append("cancelled")
                raise
            ended.append("returned")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_schedule, scope)
        try:
            await wait_for(lambda: seen, timeout=5)
            assert seen == ["ctx"]
        finally:
            scope.cancel()
    assert ended == ["cancelled"], "the schedule runs until cancelled"


def test_an_expression_that_never_matches_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="never matches"):
        cron("0 0 30 2 *", noop)  # February 30th


def test_timezone_utc_is_accepted_as_tz() -> None:
    assert cron("* * * * *", noop, tz=dt.timezone.utc).tz == "UTC"
