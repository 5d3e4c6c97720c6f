"""Arguments, property-based: every public entry point that takes a datetime, a cron
expression, a time zone, a path or a callback (durations: test_durations.py; message
content: test_context.py).

Each input is either accepted exactly (the object reports the value it was given) or
rejected with a `TypeError`/`ValueError` whose message names the argument — never a
panic, an overflow or a lost message.

The tests in the "Regressions" section at the end pin defects these tests found, now
fixed; each says what the build did before.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
import zoneinfo
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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
    trigger,
)
from agent_triggers._core import NativeTrigger

from conftest import (
    EARLIEST_OFFSET,
    LATEST_OFFSET,
    QUICK,
    RUNNING,
    UTC,
    WATCHED,
    FakeConnection,
    Host,
    assert_rejection,
    backends,
    noop,
    rejected,
    run_on,
    sender,
    wait_for,
)

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


@pytest.mark.parametrize("host", backends())
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
def test_datetimes_in_the_past_fire_once_at_once(host: Host, past: list[dt.datetime]) -> None:
    async def main() -> None:
        connection = FakeConnection()
        triggers = [at(when, sender(str(i))) for i, when in enumerate(past)]
        async with TriggerRunner(triggers, connection) as runner:
            await wait_for(lambda: len(connection.sent) >= len(past), timeout=10)
            await wait_for(lambda: not runner.is_running, timeout=10)
        assert sorted(connection.sent, key=int) == [str(i) for i in range(len(past))]

    run_on(host, main)


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
