"""Durations, property-based: every argument that takes a number of seconds —
`every(interval)`, `after(delay)`, `on_file_change(debounce=...)` and
`TriggerRunner.stop(timeout=...)` (docs/contract.md §4, §5, §6).

Each input is either accepted exactly (the object reports the value it was given, to
the nanosecond) or rejected with a `TypeError`/`ValueError` whose message names the
argument — never a panic or an overflow. The expected outcome comes from a small model
of the documented contract (conftest's `expected_duration`), so each property states
the whole rule, not a sample of it. At run time, the extremes fire, wait or stop
without overflowing.

The tests in the "Regressions" section at the end pin defects these tests found, now
fixed; each says what the build did before.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_triggers import (
    FileChange,
    TriggerRunner,
    after,
    at,
    every,
    on_file_change,
)

from conftest import (
    LATEST_OFFSET,
    MAX_SECONDS,
    QUICK,
    UTC,
    WATCHED,
    Accepted,
    FakeConnection,
    Rejected,
    awaited,
    expected_duration,
    noop,
    rejected,
    run,
    running,
    sender,
    stays_false,
    wait_for,
)


class Made(NamedTuple):
    name: str | None
    seconds: float | None


@dataclass(frozen=True)
class DurationTarget:
    label: str
    argument: str
    allow_zero: bool
    make: Callable[[Any], Made]
    name_prefix: str | None
    """Of the default name, when the object has one."""
    none: Accepted | None = None
    """What `None` means when it is the argument's default, instead of a `TypeError`."""


def make_every(value: Any) -> Made:
    trig = every(value, noop)
    return Made(trig.name, trig.interval)


def make_after(value: Any) -> Made:
    return Made(after(value, noop).name, None)


def make_debounce(value: Any) -> Made:
    return Made(None, on_file_change(WATCHED, noop, debounce=value).debounce)


def make_stop(value: Any) -> Made:
    """`stop(timeout=value)` on a runner never started: checks the argument, then returns."""
    stopping = TriggerRunner([], FakeConnection()).stop(timeout=value)
    run(lambda: awaited(stopping))
    return Made(None, None)


EVERY = DurationTarget("every", "interval", False, make_every, "every")
AFTER = DurationTarget("after", "delay", True, make_after, "after")
DEBOUNCE = DurationTarget(
    "on_file_change-debounce", "debounce", True, make_debounce, None, Accepted(0.05, "")
)
STOP = DurationTarget("stop-timeout", "timeout", True, make_stop, None, Accepted(0.0, ""))
DURATION_TARGETS = [EVERY, AFTER, DEBOUNCE, STOP]


def check_duration(target: DurationTarget, value: Any) -> None:
    expected = expected_duration(value, allow_zero=target.allow_zero)
    if value is None and target.none is not None:
        expected = target.none
    if isinstance(expected, Rejected):
        with rejected(expected.error, target.argument, expected.reason):
            target.make(value)
        return
    made = target.make(value)
    if made.seconds is not None:
        assert type(made.seconds) is float
        assert made.seconds == expected.seconds, (value, made.seconds, expected.seconds)
    if target.name_prefix is not None:
        assert made.name == f"{target.name_prefix}_{expected.spelled}s"


non_numbers = st.one_of(
    st.booleans(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.none(),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.integers(), max_size=2),
    st.dates(),
)
durations = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.floats(min_value=0.0, max_value=4e9, allow_subnormal=True),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.integers(min_value=-5, max_value=4 * 10**9),
    st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()),
    st.fractions(),
    st.timedeltas(),
    non_numbers,
)


# --- durations: every, after, on_file_change(debounce=...), TriggerRunner.stop(timeout=...)


@pytest.mark.parametrize("target", DURATION_TARGETS, ids=[t.label for t in DURATION_TARGETS])
@QUICK
@given(value=durations)
@example(value=5e-324)  # the smallest subnormal
@example(value=2.2250738585072014e-308)  # the smallest normal float
@example(value=4e-10)  # rounds to 0 ns
@example(value=5e-10)  # rounds to 1 ns
@example(value=1e-9)
@example(value=1e300)
@example(value=-1e300)
@example(value=MAX_SECONDS)
@example(value=math.nextafter(MAX_SECONDS, math.inf))
@example(value=-0.0)
@example(value=0.0)
@example(value=0)
@example(value=math.nan)
@example(value=math.inf)
@example(value=-math.inf)
@example(value=True)
@example(value=False)
@example(value=2**63)
@example(value=2**64)
@example(value=10**400)  # too large for a float: OverflowError inside, ValueError out
@example(value=Fraction(10**400, 3))
@example(value=Fraction(1, 3))
@example(value=Fraction(1, 10**400))
@example(value=Decimal("1.5"))
@example(value=Decimal("-0"))
@example(value=Decimal("NaN"))
@example(value=Decimal("-Infinity"))
@example(value=Decimal("1E+400"))
@example(value=Decimal("1E-400"))
@example(value=dt.timedelta(0))
@example(value=dt.timedelta(microseconds=-1))
@example(value=dt.timedelta(microseconds=1))
@example(value=dt.timedelta(days=37000))
@example(value=dt.timedelta.max)
@example(value=dt.timedelta.min)
@example(value="1")
@example(value=None)
@example(value=b"1")
def test_a_duration_is_accepted_exactly_or_rejected_naming_the_argument(
    target: DurationTarget, value: Any
) -> None:
    check_duration(target, value)


@QUICK
@given(
    value=durations.filter(
        lambda v: v is not None and isinstance(expected_duration(v, allow_zero=True), Rejected)
    )
)
@example(value=math.nan)
@example(value=-1)
@example(value=True)
def test_stop_timeout_errors_are_raised_when_awaited_not_when_called(value: Any) -> None:
    expected = expected_duration(value, allow_zero=True)
    assert isinstance(expected, Rejected)
    stopping = TriggerRunner([], FakeConnection()).stop(timeout=value)  # no error yet
    with rejected(expected.error, "timeout", expected.reason):
        run(lambda: awaited(stopping))


# --- durations at run time: the extremes fire, wait or stop without overflowing -----


async def test_zero_and_subnormal_delays_fire_once_at_once(connection: FakeConnection) -> None:
    delays: list[Any] = [
        0,
        -0.0,
        5e-324,
        Decimal("-0"),
        Decimal("1E-400"),
        Fraction(1, 10**400),
        dt.timedelta(0),
        dt.timedelta(microseconds=1),
    ]
    expected = [str(index) for index in range(len(delays))]
    runner = TriggerRunner([after(d, sender(str(i))) for i, d in enumerate(delays)], connection)
    async with runner:
        await wait_for(lambda: len(connection.sent) >= len(delays), timeout=10)
        await wait_for(lambda: not runner.is_running, timeout=10)  # each one-shot is over
    assert sorted(connection.sent) == expected


async def test_the_longest_durations_and_latest_datetimes_wait_and_stop_cleanly(
    connection: FakeConnection,
) -> None:
    triggers = [
        every(MAX_SECONDS, sender("every")),
        every(dt.timedelta(days=37000), sender("every timedelta")),
        after(MAX_SECONDS, sender("after")),
        after(Decimal("3.2E+9"), sender("after decimal")),
        at(dt.datetime.max.replace(tzinfo=UTC), sender("at 9999")),
        at(dt.datetime.max.replace(tzinfo=LATEST_OFFSET), sender("at 10000 UTC")),
        at(dt.datetime(2262, 4, 12, tzinfo=UTC), sender("past i64 nanoseconds")),
    ]
    runner = TriggerRunner(triggers, connection)
    async with running(runner):
        assert await stays_false(lambda: connection.sent, duration=0.2)
        assert runner.is_running
    assert not runner.is_running
    assert connection.sent == []


async def test_a_one_nanosecond_interval_runs_and_stops(connection: FakeConnection) -> None:
    calls: list[int] = []

    async def count(ctx: object) -> None:
        calls.append(len(calls))

    trig = every(1e-9, count)
    assert trig.interval == 1e-9
    runner = TriggerRunner([trig], connection)
    async with running(runner):
        await wait_for(lambda: len(calls) >= 20, timeout=10)
    stopped_at = len(calls)
    assert await stays_false(lambda: len(calls) > stopped_at, duration=0.1)


async def test_extreme_debounces_batch_or_wait_without_overflowing(tmp_path: Path) -> None:
    batches: dict[str, list[list[FileChange]]] = {"zero": [], "subnormal": [], "longest": []}

    def collector(key: str) -> Callable[[object, list[FileChange]], Coroutine[Any, Any, None]]:
        async def collect(ctx: object, changes: list[FileChange]) -> None:
            batches[key].append(changes)

        return collect

    triggers = [
        on_file_change(tmp_path, collector("zero"), debounce=0),
        on_file_change(tmp_path, collector("subnormal"), debounce=5e-324),
        on_file_change(tmp_path, collector("longest"), debounce=dt.timedelta(days=37000)),
    ]
    async with TriggerRunner(triggers, FakeConnection()) as runner:
        await anyio.sleep(0.2)  # let the watches settle (not a timing assertion)
        (tmp_path / "touched").write_text("x")
        await wait_for(lambda: batches["zero"] and batches["subnormal"], timeout=10)
        assert batches["longest"] == []  # its batch closes in a century
        assert runner.is_running


# --- Regressions: defects these tests found, each fixed ---------------------------------


@pytest.mark.parametrize("target", DURATION_TARGETS, ids=[t.label for t in DURATION_TARGETS])
def test_a_signaling_nan_error_names_the_argument(target: DurationTarget) -> None:
    # Was: ValueError("cannot convert signaling NaN to float"), no argument named.
    check_duration(target, Decimal("sNaN"))


@pytest.mark.parametrize("target", DURATION_TARGETS, ids=[t.label for t in DURATION_TARGETS])
def test_a_negative_number_beyond_any_float_is_reported_as_negative(
    target: DurationTarget,
) -> None:
    # Was: "... must be at most 3.2e9 seconds, got -1000...": called too large.
    for value in (-(10**400), Fraction(-(10**400), 3)):
        check_duration(target, value)
