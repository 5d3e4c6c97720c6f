"""Hostile input, property-based: every public entry point that takes a duration, a
datetime, a cron expression, a path, a callback or message content.

Each input is either accepted exactly (the object reports the value it was given, to
the nanosecond for durations) or rejected with a `TypeError`/`ValueError` whose
message names the argument — never a panic, an overflow or a lost message. The
expected outcome of a duration comes from a small model of the documented contract
(`expected_duration`), so each property states the whole rule, not a sample of it.

The tests in the "Regressions" section at the end pin defects these tests found, now
fixed; each says what the build did before.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import numbers
import os
import re
import sys
import tempfile
import zoneinfo
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any, NamedTuple, TypeVar, Union, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent_triggers import (
    FileChange,
    Trigger,
    TriggerContext,
    TriggerDelivery,
    TriggerRunner,
    after,
    at,
    cron,
    every,
    on_file_change,
    trigger,
)
from agent_triggers._core import NativeTrigger

from conftest import FakeConnection, Stubborn, running, stays_false, until_set, wait_for

T = TypeVar("T")

# Quick properties build objects only; those that start a runner run fewer examples.
QUICK = settings(max_examples=300, deadline=None, database=None)
RUNNING = settings(max_examples=15, deadline=None, database=None)

MAX_SECONDS = 3.2e9
"""The longest duration accepted: "about 100 years" in `every()`'s docstring, 3.2e9 s in
the native code (past it the timer's clock arithmetic would overflow)."""

UTC = dt.timezone.utc
LATEST_OFFSET = dt.timezone(-dt.timedelta(hours=23, minutes=59))
"""With `datetime.max`, the latest instant a datetime can name: year 10000 in UTC."""
EARLIEST_OFFSET = dt.timezone(dt.timedelta(hours=23, minutes=59))
"""With `datetime.min`, the earliest instant a datetime can name: year 0 in UTC."""
WATCHED = os.path.join(tempfile.gettempdir(), "agent-triggers-hostile-input")
"""A path for `on_file_change` objects that are built but never started."""


async def noop(ctx: object, *changes: object) -> None:
    pass


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on a fresh asyncio loop (the way hypothesis examples run async code)."""
    return asyncio.run(main())


async def awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def shown(text: str) -> str:
    """`text` cut short for an assertion message (some inputs are megabytes long)."""
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


def assert_rejection(error: BaseException, error_type: type[Exception], *words: str) -> None:
    """`error` is exactly `error_type` and its message contains each of `words`."""
    message = str(error)
    assert type(error) is error_type, f"{type(error).__name__}: {shown(message)}"
    for word in words:
        assert word in message, f"{word!r} not in the message: {shown(message)}"


@contextmanager
def rejected(
    error_type: type[Exception], argument: str, *words: str
) -> Generator[pytest.ExceptionInfo[Exception], None, None]:
    """The block raises exactly `error_type`, its message naming `argument` (a whole
    word) and containing each of `words`."""
    with pytest.raises(error_type, match=rf"\b{re.escape(argument)}\b") as caught:
        yield caught
    assert_rejection(caught.value, error_type, *words)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def agent_trigger_logs() -> Generator[list[logging.LogRecord], None, None]:
    """What the `agent_triggers` logger emits meanwhile (caplog is per test, not per example)."""
    logger = logging.getLogger("agent_triggers")
    handler = Records()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def messages_at(records: list[logging.LogRecord], level: int) -> list[str]:
    return [record.getMessage() for record in records if record.levelno == level]


# --- the duration model ---------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    seconds: float
    """As the object reports it: the value rounded to the nearest whole nanosecond."""
    spelled: str
    """As a default name spells it: a plain int/float as written, others by their seconds."""


@dataclass(frozen=True)
class Rejected:
    error: type[Exception]
    reason: str
    """A word or phrase the message must contain besides the argument's name."""


Expected = Union[Accepted, Rejected]


def nanoseconds(seconds: float) -> tuple[int, float]:
    """`seconds` rounded to whole nanoseconds: the count, and as float seconds."""
    count = round(Fraction(seconds) * 10**9)
    whole, part = divmod(count, 10**9)
    return count, float(whole) + float(part) / 1e9


def expected_duration(value: object, *, allow_zero: bool) -> Expected:
    """What a duration argument must do: seconds as a real number (or a `Decimal`), or
    a `timedelta`; not finite, negative (or zero, unless `allow_zero`), under one
    nanosecond or over `MAX_SECONDS` is a `ValueError`; anything else (`bool`, `str`,
    `None`, ...) a `TypeError`."""
    negative = "zero or more" if allow_zero else "positive"
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, bool):
        if isinstance(value, Decimal) and value.is_nan():
            return Rejected(ValueError, "finite")
        exact: Any = value
        try:
            seconds = float(exact)
        except OverflowError:  # an int or Fraction beyond any float
            return Rejected(ValueError, "at most" if exact > 0 else negative)
        if isinstance(value, Decimal) and value.is_finite() and math.isinf(seconds):
            # a Decimal beyond any float: float() gives an infinity, not an error
            return Rejected(ValueError, "at most" if value > 0 else negative)
    else:
        return Rejected(TypeError, "number of seconds")
    if not math.isfinite(seconds):
        return Rejected(ValueError, "finite")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        return Rejected(ValueError, negative)
    if seconds > MAX_SECONDS:
        return Rejected(ValueError, "at most")
    count, reported = nanoseconds(seconds)
    if count == 0 and not allow_zero:
        return Rejected(ValueError, "nanosecond")
    if isinstance(value, (int, float)):
        spelled = str(value)
    elif seconds.is_integer():
        spelled = f"{seconds:.0f}"
    else:  # the shortest round-trip digits, without an exponent
        spelled = format(Decimal(repr(seconds)), "f")
    return Accepted(reported, spelled)


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


def sender(text: str) -> Callable[[TriggerContext], Coroutine[Any, Any, None]]:
    async def send(ctx: TriggerContext) -> None:
        await ctx.send(text)

    return send


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
        await asyncio.sleep(0.2)  # let the watches settle (not a timing assertion)
        (tmp_path / "touched").write_text("x")
        await wait_for(lambda: batches["zero"] and batches["subnormal"], timeout=10)
        assert batches["longest"] == []  # its batch closes in a century
        assert runner.is_running


# --- TriggerRunner.stop(timeout=...) at run time ----------------------------------------


class Cooperative:
    """A trigger that ends when cancelled, after an async cleanup."""

    def __init__(self) -> None:
        self.started = False
        self.cleaned_up = False

    async def __call__(self, ctx: TriggerContext) -> None:
        self.started = True
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # an async cleanup that takes a while
            self.cleaned_up = True


short_timeouts = st.one_of(
    st.floats(min_value=0.0, max_value=0.05, allow_subnormal=True),
    st.fractions(min_value=0, max_value=Fraction(1, 20), max_denominator=10**12),
    st.decimals(min_value=0, max_value=Decimal("0.05"), allow_nan=False, allow_infinity=False),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(milliseconds=50)),
)


@RUNNING
@given(timeout=short_timeouts)
@example(timeout=0)
@example(timeout=-0.0)
@example(timeout=5e-324)
@example(timeout=Decimal("-0"))
@example(timeout=dt.timedelta(0))
@example(timeout=Fraction(1, 3 * 10**9))
def test_a_short_stop_timeout_abandons_the_trigger_and_reports_the_exact_timeout(
    timeout: Any,
) -> None:
    expected = expected_duration(timeout, allow_zero=True)
    assert isinstance(expected, Accepted)

    async def main() -> None:
        stubborn = Stubborn()
        runner = TriggerRunner([stubborn], FakeConnection())
        with agent_trigger_logs() as records:
            await runner.start()
            await until_set(stubborn.started)
            try:
                await asyncio.wait_for(runner.stop(timeout=timeout), timeout=10)
                assert not runner.is_running
            finally:
                stubborn.release()
                await wait_for(lambda: stubborn.finished)
        (warning,) = messages_at(records, logging.WARNING)
        assert warning.startswith(f"stop(timeout={expected.seconds:g}) gave up waiting"), warning
        assert "'Stubborn'" in warning

    run(main)


@pytest.mark.parametrize(
    "timeout",
    [
        None,
        MAX_SECONDS,
        3_200_000_000,
        Decimal("3.2E+9"),
        Fraction(32 * 10**8),
        dt.timedelta(days=37000),
    ],
    ids=["None", "max-float", "max-int", "max-decimal", "max-fraction", "timedelta-37000d"],
)
async def test_a_long_stop_timeout_waits_for_the_cleanup(
    timeout: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cooperative = Cooperative()
    runner = TriggerRunner([cooperative], FakeConnection())
    await runner.start()
    await wait_for(lambda: cooperative.started)
    await asyncio.wait_for(runner.stop(timeout=timeout), timeout=10)
    assert cooperative.cleaned_up
    assert not runner.is_running
    assert [r for r in caplog.records if r.name == "agent_triggers"] == []


@pytest.mark.parametrize(
    "timeout",
    [math.nan, -1, -math.inf, math.inf, 1e300, True, "1", Decimal("NaN"), dt.timedelta(-1)],
    ids=["nan", "-1", "-inf", "inf", "1e300", "True", "str", "decimal-nan", "timedelta-neg"],
)
async def test_a_rejected_stop_timeout_leaves_the_runner_running(timeout: Any) -> None:
    expected = expected_duration(timeout, allow_zero=True)
    assert isinstance(expected, Rejected)
    cooperative = Cooperative()
    runner = TriggerRunner([cooperative], FakeConnection())
    await runner.start()
    try:
        await wait_for(lambda: cooperative.started)
        stopping = runner.stop(timeout=timeout)
        with rejected(expected.error, "timeout", expected.reason):
            await stopping
        assert runner.is_running
        assert not cooperative.cleaned_up
    finally:
        await asyncio.wait_for(runner.stop(), timeout=10)
    assert cooperative.cleaned_up


# --- at(when, ...) ----------------------------------------------------------------------


def timezones() -> st.SearchStrategy[dt.tzinfo]:
    """Fixed offsets (to the microsecond, within a day), and IANA zones when the system has them."""
    day = dt.timedelta(hours=24)
    tick = dt.timedelta(microseconds=1)
    fixed: st.SearchStrategy[dt.tzinfo] = st.builds(
        dt.timezone, st.timedeltas(min_value=-day + tick, max_value=day - tick)
    )
    if zoneinfo.available_timezones():
        return st.one_of(fixed, st.timezones())
    return fixed


aware_datetimes = st.datetimes(
    min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=timezones()
)


@QUICK
@given(when=aware_datetimes)
@example(when=dt.datetime.min.replace(tzinfo=UTC))  # year 1
@example(when=dt.datetime.max.replace(tzinfo=UTC))  # year 9999
@example(when=dt.datetime.min.replace(tzinfo=EARLIEST_OFFSET))  # year 0 in UTC
@example(when=dt.datetime.max.replace(tzinfo=LATEST_OFFSET))  # year 10000 in UTC
@example(when=dt.datetime(1677, 9, 21, tzinfo=UTC))  # i64 nanoseconds run out
@example(when=dt.datetime(2262, 4, 12, tzinfo=UTC))
@example(when=dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC))  # i32 seconds run out
def test_any_aware_datetime_is_accepted_and_named_by_its_isoformat(when: dt.datetime) -> None:
    trig = at(when, noop)
    assert trig.name == f"at_{when.isoformat()}"
    assert trig.__name__ == trig.name
    assert trig.callback is noop


@QUICK
@given(when=st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max))
@example(when=dt.datetime.min)
@example(when=dt.datetime.max)
def test_a_naive_datetime_is_a_value_error_naming_when(when: dt.datetime) -> None:
    with rejected(ValueError, "when", "aware"):
        at(when, noop)


@QUICK
@given(
    when=st.one_of(
        st.dates(),
        st.times(),
        st.timedeltas(),
        st.floats(),
        st.integers(),
        st.text(max_size=20),
        st.none(),
        st.booleans(),
    )
)
@example(when=dt.date(9999, 12, 31))
@example(when=1_700_000_000)
@example(when="2030-01-01T00:00:00+00:00")
def test_a_non_datetime_when_is_a_type_error_naming_when(when: Any) -> None:
    with rejected(TypeError, "when", type(when).__name__):
        at(when, noop)


@RUNNING
@given(
    past=st.lists(
        st.datetimes(
            min_value=dt.datetime.min, max_value=dt.datetime(2000, 1, 1), timezones=timezones()
        ),
        min_size=1,
        max_size=4,
    )
)
@example(
    past=[
        dt.datetime.min.replace(tzinfo=UTC),
        dt.datetime.min.replace(tzinfo=EARLIEST_OFFSET),
        dt.datetime(1677, 9, 21, tzinfo=UTC),
        dt.datetime(1970, 1, 1, tzinfo=UTC),
    ]
)
def test_datetimes_in_the_past_fire_once_at_once(past: list[dt.datetime]) -> None:
    async def main() -> None:
        connection = FakeConnection()
        triggers = [at(when, sender(str(i))) for i, when in enumerate(past)]
        async with TriggerRunner(triggers, connection) as runner:
            await wait_for(lambda: len(connection.sent) >= len(past), timeout=10)
            await wait_for(lambda: not runner.is_running, timeout=10)
        assert sorted(connection.sent, key=int) == [str(i) for i in range(len(past))]

    run(main)


# --- cron(expression, ..., tz=...) ------------------------------------------------------

cron_parts = st.sampled_from(
    [
        *["*", "0", "59", "*/5", "1-5", "5-1", "MON", "jan", "L", "5L", "1#2", "15W", "?"],
        *["60", "-1", "*/0", "99999999999999999999", "@hourly", "@reboot", "\0", "😀", ""],
    ]
)
cron_expressions = st.one_of(
    st.lists(cron_parts, max_size=8).map(" ".join),
    st.text(st.characters(exclude_categories=()), max_size=40),  # lone surrogates too
)


@QUICK
@given(expression=cron_expressions)
@example(expression="")
@example(expression=" ")
@example(expression="\t\n")
@example(expression="\0")
@example(expression="* * * * *\0")
@example(expression="*\0* * * *")
@example(expression="😀 * * * *")
@example(expression="* * * * * * *")
@example(expression="0 0 30 2 *")  # never matches
@example(expression="x" * 10_000_000)
@example(expression="0," * 1_000_000 + "0 * * * *")  # valid, and 2 MB long
@example(expression="* * * * *")
@example(expression="@hourly")
def test_a_cron_expression_is_kept_exactly_or_rejected_naming_it(expression: str) -> None:
    try:
        trig = cron(expression, noop)
    except ValueError as error:
        assert_rejection(error, ValueError, "expression")
        return
    assert trig.expression == expression
    assert trig.name == f"cron_{expression}"
    assert trig.tz is None


@QUICK
@given(expression=st.one_of(st.binary(max_size=10), st.integers(), st.none(), st.floats()))
@example(expression=b"* * * * *")
def test_a_non_str_cron_expression_is_a_type_error_naming_it(expression: Any) -> None:
    with rejected(TypeError, "expression", type(expression).__name__):
        cron(expression, noop)


@QUICK
@given(tz=st.one_of(st.text(max_size=30), st.sampled_from(["UTC", "Europe/Paris", "Etc/GMT+5"])))
@example(tz="")
@example(tz="\0")
@example(tz="😀")
@example(tz="../../etc/passwd")
@example(tz="Mars/Olympus")
def test_a_cron_time_zone_name_is_kept_exactly_or_rejected(tz: str) -> None:
    try:
        trig = cron("* * * * *", noop, tz=tz)
    except ValueError as error:
        assert_rejection(error, ValueError, "time zone")
        return
    assert trig.tz == tz


@QUICK
@given(tz=st.one_of(st.binary(max_size=10), st.integers(), st.floats(), st.dates()))
def test_a_cron_time_zone_of_another_type_is_a_type_error_naming_tz(tz: Any) -> None:
    with rejected(TypeError, "tz", type(tz).__name__):
        cron("* * * * *", noop, tz=tz)


# --- on_file_change(path, ...) ------------------------------------------------------------

WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789¹²³"
}


def plain_component(text: str) -> bool:
    """A relative path component that means the same on every OS: not `.`/`..`, no
    leading/trailing spaces or dots, not a Windows device name."""
    return (
        text == text.strip(" .")
        and text not in ("", ".", "..")
        and text.split(".")[0].rstrip(" ").upper() not in WINDOWS_DEVICES
    )


# No separators, control characters or characters Windows reserves.
path_components = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='/\\:*?"<>|', codec="utf-8"),
    min_size=1,
    max_size=30,
).filter(plain_component)


@QUICK
@given(component=path_components)
@example(component="😀")
@example(component="\U0010ffff")
@example(component="x" * 10_000)
def test_a_path_is_made_absolute_and_names_the_trigger(component: str) -> None:
    expected = os.path.join(os.getcwd(), component)
    for given_path in (component, PurePath(component)):
        trig = on_file_change(given_path, noop)
        assert trig.path == expected
        assert trig.name == f"on_file_change_{component}"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_an_undecodable_posix_file_name_round_trips() -> None:
    # os.listdir() spells the byte 0xFF as the lone surrogate U+DCFF (surrogateescape).
    path = os.path.join(tempfile.gettempdir(), "\udcff")
    assert on_file_change(path, noop).path == path


@QUICK
@given(
    head=st.text(max_size=10),
    tail=st.text(max_size=10),
    wrap=st.sampled_from([str, PurePath]),
)
@example(head="", tail="", wrap=str)
@example(head="a", tail="b", wrap=PurePath)
def test_a_path_with_a_nul_is_a_value_error_naming_path(
    head: str, tail: str, wrap: Callable[[str], str | PurePath]
) -> None:
    with rejected(ValueError, "path", "NUL"):
        on_file_change(wrap(f"{head}\0{tail}"), noop)


def test_an_empty_path_is_a_value_error_naming_path() -> None:
    with rejected(ValueError, "path", "empty"):
        on_file_change("", noop)


class FsPath:
    """An `os.PathLike` whose `__fspath__` returns whatever it was given."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __fspath__(self) -> Any:
        return self.value


@QUICK
@given(
    path=st.one_of(
        st.binary(max_size=10),
        st.integers(),
        st.floats(),
        st.none(),
        st.lists(st.text(max_size=3), max_size=2),
        st.one_of(st.binary(max_size=5), st.integers(), st.none()).map(FsPath),
    )
)
@example(path=b"/tmp")
@example(path=b"a\0b")
@example(path=FsPath(b"/tmp"))
def test_a_path_of_another_type_is_a_type_error_naming_path(path: Any) -> None:
    with rejected(TypeError, "path", type(path).__name__):
        on_file_change(path, noop)


# --- callbacks: every factory, TriggerRunner items, @trigger -----------------------------

FUTURE = dt.datetime(2999, 1, 1, tzinfo=UTC)
FACTORIES: dict[str, Callable[[Any], NativeTrigger]] = {
    "every": lambda callback: every(1, callback),
    "after": lambda callback: after(1, callback),
    "at": lambda callback: at(FUTURE, callback),
    "cron": lambda callback: cron("* * * * *", callback),
    "on_file_change": lambda callback: on_file_change(WATCHED, callback),
}
non_callables = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.floats(),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
@QUICK
@given(callback=non_callables)
@example(callback=None)
def test_a_non_callable_callback_is_a_type_error_naming_callback(
    factory: Callable[[Any], NativeTrigger], callback: Any
) -> None:
    with rejected(TypeError, "callback", type(callback).__name__):
        factory(callback)


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_a_coroutine_object_as_callback_is_a_type_error_naming_callback(
    factory: Callable[[Any], NativeTrigger],
) -> None:
    coroutine = noop(None)
    hostile: Any = coroutine
    try:
        with rejected(TypeError, "callback", "coroutine"):
            factory(hostile)
    finally:
        coroutine.close()


def sync_callback(ctx: object, *changes: object) -> None:
    pass


SYNC_CALLBACKS: list[Callable[[object], object]] = [
    sync_callback,
    lambda ctx: None,
    lambda ctx: noop(ctx),
]


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
@pytest.mark.parametrize(
    "callback",
    SYNC_CALLBACKS,
    ids=["sync-function", "sync-lambda", "lambda-returning-a-coroutine"],
)
def test_a_sync_callable_is_accepted_as_callback_and_kept_as_is(
    factory: Callable[[Any], NativeTrigger], callback: Any
) -> None:
    assert factory(callback).callback is callback


async def test_a_sync_callback_is_called_and_its_non_awaitable_result_logged(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    contexts: list[object] = []

    def record(ctx: object) -> None:
        contexts.append(ctx)

    hostile: Any = record
    triggers = [
        after(0, hostile, name="sync-once"),
        every(0.01, hostile, name="sync-every"),
        after(0, lambda ctx: sender("via a lambda")(ctx), name="lambda"),
    ]
    once = "trigger 'sync-once' failed: TypeError: trigger 'sync-once' must return an awaitable"
    periodic = (
        "trigger 'sync-every' failed: TypeError: trigger 'sync-every' must return an awaitable"
    )

    def errors() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "agent_triggers" and r.levelno == logging.ERROR
        ]

    async with TriggerRunner(triggers, connection) as runner:
        await wait_for(lambda: sum(e.startswith(periodic) for e in errors()) >= 3, timeout=10)
        await wait_for(lambda: connection.sent == ["via a lambda"], timeout=10)
        assert runner.is_running  # the periodic one goes on despite its errors
    assert len(contexts) >= 4
    assert all(isinstance(ctx, TriggerContext) for ctx in contexts)
    assert sum(error.startswith(once) for error in errors()) == 1
    assert all(error.startswith((once, periodic)) for error in errors()), errors()


class Noop(Trigger):
    async def run(self, ctx: TriggerContext) -> None:
        pass


GOOD_TRIGGERS: list[Callable[[TriggerContext], Awaitable[object]] | Trigger | NativeTrigger] = [
    noop,
    every(1, noop),
    Noop(),
    lambda ctx: noop(ctx),
]
good_triggers = st.sampled_from(GOOD_TRIGGERS)


@QUICK
@given(
    before=st.lists(good_triggers, max_size=3),
    bad=non_callables,
    behind=st.lists(good_triggers, max_size=3),
)
@example(before=[], bad=None, behind=[])
def test_a_non_trigger_item_is_a_type_error_naming_its_index(
    before: list[Any], bad: Any, behind: list[Any]
) -> None:
    with rejected(TypeError, type(bad).__name__, f"triggers[{len(before)}]"):
        TriggerRunner([*before, bad, *behind], FakeConnection())


def test_a_coroutine_object_item_is_a_type_error_naming_its_index() -> None:
    coroutine = noop(None)
    hostile: Any = coroutine
    try:
        with rejected(TypeError, "coroutine", "triggers[1]"):
            TriggerRunner([noop, hostile], FakeConnection())
    finally:
        coroutine.close()


async def test_sync_items_are_accepted_and_fail_at_run_time_alone(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    called: list[object] = []

    def sync_trigger(ctx: object) -> None:
        called.append(ctx)

    items: list[Callable[[TriggerContext], object]] = [
        sync_trigger,
        lambda ctx: None,
        sender("still delivered"),
    ]
    hostile: Any = items
    async with TriggerRunner(hostile, connection) as runner:
        await wait_for(lambda: connection.sent == ["still delivered"], timeout=10)
        await wait_for(lambda: not runner.is_running, timeout=10)
    assert len(called) == 1
    assert isinstance(called[0], TriggerContext)
    errors = sorted(
        r.getMessage()
        for r in caplog.records
        if r.name == "agent_triggers" and r.levelno == logging.ERROR
    )
    assert len(errors) == 2, errors
    for error, name in zip(errors, ["<lambda>", "sync_trigger"]):
        failed = f"trigger {name!r} failed: TypeError: trigger {name!r} must return an awaitable"
        assert error.startswith(failed), error
        assert error.endswith("got NoneType"), error


ASYNC_MESSAGE = "Trigger must be an async function"
ARITY_MESSAGE = "Trigger must accept exactly one parameter"


@QUICK
@given(func=non_callables.filter(lambda value: value is not None))
@example(func=sync_callback)
@example(func=SYNC_CALLBACKS[1])
@example(func=print)
@example(func=Noop)
def test_trigger_rejects_anything_but_an_async_function(func: Any) -> None:
    with pytest.raises(ValueError, match=f"^{ASYNC_MESSAGE}$"):
        trigger(func)


def test_trigger_rejects_a_coroutine_object() -> None:
    coroutine = noop(None)
    hostile: Any = coroutine
    try:
        with pytest.raises(ValueError, match=f"^{ASYNC_MESSAGE}$"):
            trigger(hostile)
    finally:
        coroutine.close()


async def no_parameter() -> None:
    pass


async def two_parameters(ctx: object, extra: object) -> None:
    pass


async def defaulted_second(ctx: object, extra: object = None) -> None:
    pass


@pytest.mark.parametrize("func", [no_parameter, two_parameters, defaulted_second])
def test_trigger_rejects_an_async_function_without_exactly_one_parameter(
    func: Callable[..., Any],
) -> None:
    with pytest.raises(ValueError, match=f"^{ARITY_MESSAGE}$"):
        trigger(func)


def test_trigger_of_none_is_the_bare_decorator() -> None:
    hostile: Any = None
    decorate = trigger(hostile)

    async def one(ctx: TriggerContext) -> None:
        pass

    assert decorate(one) is one
    assert getattr(one, "__is_trigger__", False) is True


@QUICK
@given(name=st.one_of(st.integers(), st.binary(max_size=4), st.floats(), st.booleans()))
def test_trigger_name_of_another_type_is_a_type_error_naming_name(name: Any) -> None:
    with rejected(TypeError, "name", type(name).__name__):
        trigger(name=name)


@QUICK
@given(delivery=st.one_of(st.text(max_size=16), st.integers(), st.booleans()))
@example(delivery="wait_idle")
@example(delivery="send_immediately")
def test_trigger_delivery_is_a_member_or_its_value_else_an_error_naming_delivery(
    delivery: Any,
) -> None:
    # As every native trigger takes it: a member's value is the member (a str
    # the type does not admit, hence `Any`).
    members = {member.value: member for member in TriggerDelivery}
    given: Any = delivery
    if not isinstance(given, str):
        with rejected(TypeError, "delivery", type(given).__name__):
            trigger(delivery=given)
    elif given not in members:
        with rejected(ValueError, "delivery"):
            trigger(delivery=cast(Any, given))
    else:

        async def one(ctx: TriggerContext) -> None:
            pass

        assert getattr(trigger(delivery=cast(Any, given))(one), "delivery", None) is members[given]


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


@RUNNING
@given(messages=st.lists(hostile_text, max_size=8))
@example(messages=["", "\0", "a\0b", "\ud800", "\udc00\ud800", "😀", "\U0010ffff"])
def test_hostile_strings_arrive_exactly_in_order(messages: list[str]) -> None:
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

    run(main)


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


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: cron("\ud800", noop), "expression"),
        (lambda: cron("* * * * *", noop, tz="\ud800"), "tz"),
        (lambda: every(1, noop, name="\ud800"), "name"),
    ],
    ids=["cron-expression", "cron-tz", "every-name"],
)
def test_a_lone_surrogate_is_a_value_error_naming_the_argument(
    make: Callable[[], object], argument: str
) -> None:
    # Was: UnicodeEncodeError("'utf-8' codec can't encode character '\ud800' ..."),
    # a ValueError subclass whose message does not say which argument is wrong.
    with rejected(ValueError, argument):
        make()


def test_an_unencodable_path_is_a_value_error_naming_path() -> None:
    # Was: TypeError("path must be a str or os.PathLike, not str").
    with rejected(ValueError, "path"):
        on_file_change("\ud800", noop)


def test_a_trigger_named_with_a_lone_surrogate_is_accepted_or_named_by_its_index() -> None:
    # Was: UnicodeEncodeError from TriggerRunner(), though @trigger accepted the name.
    @trigger(name="\ud800")
    async def oddly_named(ctx: TriggerContext) -> None:
        pass

    try:
        TriggerRunner([oddly_named], FakeConnection())
    except (TypeError, ValueError) as error:
        failure: BaseException = error
    else:
        return  # accepted
    assert "triggers[0]" in str(failure), f"{type(failure).__name__}: {failure}"


def test_non_iterable_triggers_is_a_type_error_naming_triggers() -> None:
    # Was: TypeError("'NoneType' object is not iterable").
    hostile: Any = None
    with rejected(TypeError, "triggers"):
        TriggerRunner(hostile, FakeConnection())


def test_a_fixed_offset_timezone_for_cron_is_a_value_error_naming_tz() -> None:
    # The stub types tz as `str | ZoneInfo | timezone | None` and timezone.utc works;
    # today another offset is TypeError("tz must be ... not timezone").
    with rejected(ValueError, "tz"):
        cron("* * * * *", noop, tz=dt.timezone(dt.timedelta(hours=5)))
