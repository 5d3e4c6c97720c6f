"""docs/contract.md §4: `TriggerRunner` — construction, start, is_running, `async with`,
failing triggers, and the host they run on: asyncio's loop or trio's run, whichever
awaited `start()` (§7) (stop(): test_stop.py; a runner dropped without stop():
test_leaks.py)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from agent_triggers import (
    AlreadyStartedError,
    Trigger,
    TriggerContext,
    TriggerRunner,
    every,
)

from conftest import (
    FakeConnection,
    RaisingConnection,
    asyncio_only,
    bounded,
    error_records,
    until_set,
    wait_for,
    wait_forever,
)


async def noop(ctx: TriggerContext) -> None:
    pass


# --- construction --------------------------------------------------------------


async def test_constructed_with_positional_arguments(connection: FakeConnection) -> None:
    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("positional")

    async with TriggerRunner([greet], connection):
        await wait_for(lambda: connection.sent == ["positional"])


async def test_constructed_with_keyword_arguments(connection: FakeConnection) -> None:
    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("keyword")

    async with TriggerRunner(triggers=[greet], connection=connection):
        await wait_for(lambda: connection.sent == ["keyword"])


async def test_triggers_may_be_any_iterable(connection: FakeConnection) -> None:
    async def greet(ctx: TriggerContext) -> None:
        await ctx.send("from a tuple")

    async with TriggerRunner((greet,), connection):
        await wait_for(lambda: connection.sent == ["from a tuple"])


@pytest.mark.parametrize("bad_item", [42, "not a trigger", None, object()])
def test_non_callable_item_is_rejected_naming_its_index(
    connection: FakeConnection, bad_item: object
) -> None:
    triggers: list[Any] = [noop, bad_item]
    with pytest.raises(TypeError) as excinfo:
        TriggerRunner(triggers, connection)
    assert re.search(r"\b1\b", str(excinfo.value)), str(excinfo.value)


def test_non_callable_item_index_is_reported_for_later_positions(
    connection: FakeConnection,
) -> None:
    triggers: list[Any] = [noop] * 11 + [42]
    with pytest.raises(TypeError, match=r"\b11\b"):
        TriggerRunner(triggers, connection)


def test_non_callable_first_item_is_reported_as_index_0(connection: FakeConnection) -> None:
    triggers: list[Any] = [3.5, noop]
    with pytest.raises(TypeError, match=r"\b0\b"):
        TriggerRunner(triggers, connection)


def test_non_callable_item_is_rejected_with_keyword_arguments(
    connection: FakeConnection,
) -> None:
    triggers: list[Any] = [noop, noop, "nope"]
    with pytest.raises(TypeError, match=r"\b2\b"):
        TriggerRunner(triggers=triggers, connection=connection)


class NotCallableTrigger(Trigger):
    """A Trigger subclass instance is accepted whether or not it is callable."""

    name = "not-callable"

    async def run(self, ctx: TriggerContext) -> None:
        await ctx.send("class-based")


def test_construction_accepts_every_trigger_kind(connection: FakeConnection) -> None:
    async def tick(ctx: object) -> None:
        pass

    TriggerRunner([noop, NotCallableTrigger(), every(60, tick), lambda ctx: noop(ctx)], connection)


async def test_empty_runner_starts_and_stops(connection: FakeConnection) -> None:
    runner = TriggerRunner([], connection)
    await runner.start()
    await runner.stop()
    assert runner.is_running is False


# --- start -----------------------------------------------------------------------


async def test_start_runs_triggers_concurrently(connection: FakeConnection) -> None:
    """Each trigger waits for the other to have started: only concurrency gets both done."""
    first_started = anyio.Event()
    second_started = anyio.Event()

    async def first(ctx: TriggerContext) -> None:
        first_started.set()
        await second_started.wait()
        await ctx.send("first done")

    async def second(ctx: TriggerContext) -> None:
        second_started.set()
        await first_started.wait()
        await ctx.send("second done")

    async with TriggerRunner([first, second], connection):
        await wait_for(lambda: sorted(connection.sent) == ["first done", "second done"])


async def test_each_trigger_gets_its_own_context(connection: FakeConnection) -> None:
    contexts: list[TriggerContext] = []

    async def record(ctx: TriggerContext) -> None:
        contexts.append(ctx)
        await ctx.send(f"from context {len(contexts)}")

    async with TriggerRunner([record, record, record], connection):
        await wait_for(lambda: len(contexts) == 3 and len(connection.sent) == 3)
    assert all(isinstance(ctx, TriggerContext) for ctx in contexts)
    assert len({id(ctx) for ctx in contexts}) == 3


async def test_start_returns_without_waiting_for_triggers(connection: FakeConnection) -> None:
    runner = TriggerRunner([wait_forever], connection)
    try:
        await bounded(runner.start(), timeout=2.0)
    finally:
        await runner.stop()


async def test_second_start_while_running_raises_already_started(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([wait_forever], connection)
    async with runner:
        with pytest.raises(AlreadyStartedError):
            await runner.start()


async def test_second_start_raises_even_after_every_trigger_returned(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([noop], connection)
    async with runner:
        await wait_for(lambda: not runner.is_running)
        with pytest.raises(AlreadyStartedError):
            await runner.start()


async def test_already_started_error_is_a_runtime_error_when_raised(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([], connection)
    async with runner:
        with pytest.raises(RuntimeError):
            await runner.start()


async def test_second_start_does_not_launch_triggers_again(connection: FakeConnection) -> None:
    starts: list[int] = []

    async def counted(ctx: TriggerContext) -> None:
        starts.append(1)
        await anyio.sleep(3600)

    runner = TriggerRunner([counted], connection)
    async with runner:
        await wait_for(lambda: starts)
        with pytest.raises(AlreadyStartedError):
            await runner.start()
        await anyio.sleep(0.05)  # time for a second launch to show up (a negative)
        assert len(starts) == 1


# --- is_running ----------------------------------------------------------------------


async def test_is_running_false_before_start(connection: FakeConnection) -> None:
    assert TriggerRunner([wait_forever], connection).is_running is False


async def test_is_running_true_while_a_trigger_runs_and_false_after_stop(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([wait_forever], connection)
    await runner.start()
    try:
        assert runner.is_running is True
        await anyio.sleep(0.05)  # time for a wrong False to show up (a negative)
        assert runner.is_running is True
    finally:
        await runner.stop()
    assert runner.is_running is False


async def test_is_running_becomes_false_once_every_trigger_returned(
    connection: FakeConnection,
) -> None:
    release = anyio.Event()

    async def short(ctx: TriggerContext) -> None:
        await ctx.send("short")

    async def longer(ctx: TriggerContext) -> None:
        await release.wait()

    runner = TriggerRunner([short, longer], connection)
    async with runner:
        await wait_for(lambda: connection.sent == ["short"])
        await anyio.sleep(0.02)  # time for a wrong False to show up (a negative)
        assert runner.is_running is True, "one trigger is still running"
        release.set()
        await wait_for(lambda: runner.is_running is False)


async def test_is_running_becomes_false_when_the_only_trigger_raises(
    connection: FakeConnection,
) -> None:
    async def broken(ctx: TriggerContext) -> None:
        raise RuntimeError("broken on purpose")

    runner = TriggerRunner([broken], connection)
    async with runner:
        await wait_for(lambda: runner.is_running is False)


# --- async with --------------------------------------------------------------------


async def test_async_with_starts_on_enter_and_stops_on_exit(connection: FakeConnection) -> None:
    events: list[str] = []

    async def sleeper(ctx: TriggerContext) -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        finally:
            # An async cleanup that takes a while (shielded: on trio, every await
            # in a cancelled scope is cancelled again).
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.02)
            events.append("cleaned up")

    runner = TriggerRunner([sleeper], connection)
    async with runner:
        assert runner.is_running is True
        await wait_for(lambda: events == ["started"])
    assert events == ["started", "cleaned up"]
    assert runner.is_running is False


async def test_async_with_stops_when_the_body_raises(connection: FakeConnection) -> None:
    cleaned: list[bool] = []
    started = anyio.Event()

    async def sleeper(ctx: TriggerContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            cleaned.append(True)

    runner = TriggerRunner([sleeper], connection)

    async def body_raises() -> None:
        async with runner:
            await until_set(started)
            raise KeyError("from the body")

    with pytest.raises(KeyError, match="from the body"):
        await body_raises()
    assert cleaned == [True]
    assert runner.is_running is False


async def test_async_with_on_a_started_runner_raises_already_started(
    connection: FakeConnection,
) -> None:
    runner = TriggerRunner([wait_forever], connection)
    await runner.start()
    try:
        with pytest.raises(AlreadyStartedError):
            async with runner:
                pass
    finally:
        await runner.stop()


# --- returning and raising triggers --------------------------------------------------


async def test_a_trigger_that_returns_ends_quietly(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_triggers")

    async def once(ctx: TriggerContext) -> None:
        await ctx.send("done")

    runner = TriggerRunner([once], connection)
    async with runner:
        await wait_for(lambda: not runner.is_running)
    assert connection.sent == ["done"]
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []


async def test_raising_trigger_is_logged_with_name_text_and_exc_info(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")

    async def exploding_trigger(ctx: TriggerContext) -> None:
        raise ValueError("kaboom-4217")

    async with TriggerRunner([exploding_trigger], connection):
        await wait_for(lambda: error_records(caplog))
    (record,) = error_records(caplog)
    message = record.getMessage()
    assert "exploding_trigger" in message
    assert "kaboom-4217" in message
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    assert str(record.exc_info[1]) == "kaboom-4217"


async def test_raising_trigger_subclass_is_logged_under_its_name(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")

    class Exploding(Trigger):
        name = "exploding-class-trigger"

        async def run(self, ctx: TriggerContext) -> None:
            raise RuntimeError("class kaboom 99")

    async with TriggerRunner([Exploding()], connection):
        await wait_for(lambda: error_records(caplog))
    (record,) = error_records(caplog)
    assert "exploding-class-trigger" in record.getMessage()
    assert "class kaboom 99" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


async def test_raising_trigger_does_not_disturb_siblings_or_the_loop(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    ticks: list[int] = []
    failures: list[int] = []

    async def failing(ctx: TriggerContext) -> None:
        failures.append(1)
        await anyio.sleep(0.02)  # fails after a first await
        raise RuntimeError("failing trigger")

    async def steady(ctx: TriggerContext) -> None:
        while True:
            ticks.append(1)
            await anyio.sleep(0.01)  # the pace of its ticks

    runner = TriggerRunner([failing, steady], connection)
    async with runner:
        await wait_for(lambda: error_records(caplog))
        seen = len(ticks)
        await wait_for(lambda: len(ticks) >= seen + 5, what="the sibling to keep ticking")
        assert runner.is_running is True
        # The host still runs fresh work: a new task.
        fresh = anyio.Event()

        async def new_task() -> None:
            fresh.set()

        async with anyio.create_task_group() as group:
            group.start_soon(new_task)
            await until_set(fresh, timeout=2.0, what="a new task to run")
        # No restart: the failing trigger ran exactly once (the sleep gives a restart
        # time to show up; a negative has no event to await).
        await anyio.sleep(0.05)
        assert failures == [1]
    assert len(error_records(caplog)) == 1


async def test_uncaught_send_error_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="agent_triggers")
    conn = RaisingConnection()

    async def sender(ctx: TriggerContext) -> None:
        await ctx.send("doomed")

    async with TriggerRunner([sender], conn):
        await wait_for(lambda: error_records(caplog))
    (record,) = error_records(caplog)
    assert "sender" in record.getMessage()
    assert "agent connection lost" in record.getMessage()


# --- host and contextvars ------------------------------------------------------------


async def test_triggers_run_on_the_event_loop_that_called_start(
    connection: FakeConnection,
) -> None:
    # The host's loop: asyncio's event loop (the very object), or trio's run.
    loops: list[anyio.lowlevel.EventLoopToken] = []
    threads: list[int] = []

    async def where(ctx: TriggerContext) -> None:
        loops.append(anyio.lowlevel.current_token())
        threads.append(threading.get_ident())

    async with TriggerRunner([where, where], connection):
        await wait_for(lambda: len(loops) == 2)
    assert loops == [anyio.lowlevel.current_token()] * 2
    assert threads == [threading.get_ident()] * 2


async def test_triggers_run_as_tasks_of_the_host(connection: FakeConnection) -> None:
    tasks: list[anyio.TaskInfo] = []

    async def which_task(ctx: TriggerContext) -> None:
        tasks.append(anyio.get_current_task())  # raises outside a task of the host
        await anyio.sleep_forever()  # alive beside the caller: their tasks are told apart

    async with TriggerRunner([which_task], connection):
        await wait_for(lambda: tasks)
    assert tasks[0] != anyio.get_current_task()


@asyncio_only
async def test_triggers_run_as_asyncio_tasks(connection: FakeConnection) -> None:
    # asyncio's Task class itself (on trio: the test above).
    tasks: list[asyncio.Task[Any] | None] = []

    async def which_task(ctx: TriggerContext) -> None:
        tasks.append(asyncio.current_task())

    async with TriggerRunner([which_task], connection):
        await wait_for(lambda: tasks)
    assert isinstance(tasks[0], asyncio.Task)
    assert tasks[0] is not asyncio.current_task()


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="unset")


async def test_triggers_see_the_callers_contextvars(connection: FakeConnection) -> None:
    seen: list[str] = []

    async def read_var(ctx: TriggerContext) -> None:
        seen.append(REQUEST_ID.get())

    token = REQUEST_ID.set("set-before-start")
    try:
        async with TriggerRunner([read_var], connection):
            await wait_for(lambda: seen)
    finally:
        REQUEST_ID.reset(token)
    assert seen == ["set-before-start"]


# --- the loop is never blocked -------------------------------------------------------


async def test_event_loop_stays_responsive_with_many_triggers(
    connection: FakeConnection,
) -> None:
    callback_calls: list[int] = []

    async def busy_python(ctx: TriggerContext) -> None:
        while True:
            await ctx.send("py")
            await anyio.sleep(0.005)  # the pace of its sends

    async def callback(ctx: object) -> None:
        callback_calls.append(1)

    triggers: list[Any] = [busy_python] * 25 + [every(0.01, callback) for _ in range(25)]

    async def max_lag(duration: float) -> float:
        worst = 0.0
        end = anyio.current_time() + duration
        while anyio.current_time() < end:
            before = anyio.current_time()
            await anyio.sleep(0.01)  # lag = how late this wakes up
            worst = max(worst, anyio.current_time() - before - 0.01)
        return worst

    async with TriggerRunner(triggers, connection):
        lag = await max_lag(0.6)
        assert callback_calls, "the every() triggers never fired"
        assert connection.sent, "the Python triggers never sent"
    assert lag < 0.5


async def test_other_python_threads_run_while_triggers_wait(connection: FakeConnection) -> None:
    """Rust waiting on timers must not hold the GIL."""
    progress: list[int] = []
    done = threading.Event()

    def worker() -> None:
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            progress.append(1)
            time.sleep(0.001)  # the pace of its progress (a thread, not the loop)
        done.set()

    async def callback(ctx: object) -> None:
        pass

    async with TriggerRunner([every(0.05, callback), every(0.2, callback)], connection):
        thread = threading.Thread(target=worker)
        thread.start()
        await wait_for(done.is_set)
        thread.join()
    assert len(progress) >= 20
