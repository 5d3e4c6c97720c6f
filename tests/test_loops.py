"""Runners and event loops: a runner stopped from a loop other than the one it
was started on; runners on loops of their own in threads of their own; a
runner built outside any loop; `start()` with no running loop; the loop each
async test of the suite runs on (see conftest's `backends`); and a trigger
that blocks the loop. Runners of other loops are asyncio's own matter (§7: a runner
started under one host is stopped under the same one): those tests run on asyncio
and uvloop only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import sniffio

from agent_triggers import TriggerContext, TriggerRunner, every

from conftest import (
    KINDS,
    FakeConnection,
    Kind,
    LoopFactory,
    Probe,
    Send,
    asyncio_only,
    close_like_asyncio_run,
    error_records,
    hostile_names,
    loop_factories,
    run_hostile,
    run_to_completion,
    wait_for,
)

T = TypeVar("T")

#: Generous bounds: a stop, a thread's join, a cross-thread call.
STOP_WITHIN = 10.0
JOIN_WITHIN = 30.0

LOOPS = loop_factories()


def running_loop_factory() -> LoopFactory:
    """A factory of new loops of the running loop's class."""
    return type(asyncio.get_running_loop())


class LoopThread:
    """A loop run forever in a thread of its own ("loop A"), which can be
    paused (stopped, not closed), resumed, and closed as `asyncio.run` does."""

    def __init__(self, factory: LoopFactory) -> None:
        self.loop = factory()
        self.thread = threading.Thread()
        self.resume()

    def resume(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="loop-A", daemon=True)
        self.thread.start()

    def pause(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(JOIN_WITHIN)
        assert not self.thread.is_alive(), "loop A did not pause"

    def close(self) -> None:
        """Pause, then close loop A as `asyncio.run` does, in a thread of its own
        (a loop cannot run on a thread where another is running)."""
        if self.thread.is_alive():
            self.pause()
        errors: list[BaseException] = []

        def close() -> None:
            try:
                close_like_asyncio_run(self.loop)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                errors.append(error)

        self.thread = threading.Thread(target=close, name="loop-A", daemon=True)
        self.thread.start()
        self.thread.join(JOIN_WITHIN)
        assert not self.thread.is_alive(), "loop A did not close"
        if errors:
            raise errors[0]

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on loop A and await its result from the calling loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), STOP_WITHIN)


class Watched:
    """A runner's triggers, watched from other threads: a Python trigger that
    waits forever (noting where its cleanup ran) and an `every` that ticks."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.cleaned_up_on: list[str] = []
        self.ticks = 0

    def triggers(self) -> list[Any]:
        async def wait_forever(ctx: TriggerContext) -> None:
            self.waiting.set()
            try:
                await asyncio.Event().wait()
            finally:
                self.cleaned_up_on.append(threading.current_thread().name)

        async def tick(ctx: TriggerContext) -> None:
            self.ticks += 1

        return [wait_forever, every(0.02, tick, name="tick")]

    async def both_running(self) -> None:
        await wait_for(lambda: self.waiting.is_set() and self.ticks >= 3, timeout=10)

    async def none_fires(self) -> None:
        ticks = self.ticks
        await asyncio.sleep(0.2)  # ten intervals for a stray tick to show up (a negative)
        assert self.ticks == ticks, "a trigger fired after stop() returned"


async def stop_from_here(runner: TriggerRunner, within: float = STOP_WITHIN) -> RuntimeError | None:
    """Await `runner.stop()` on the running loop: the RuntimeError it raises,
    or None once it has stopped. Fails the test if it takes over `within` s."""
    try:
        await asyncio.wait_for(runner.stop(), within)
    except RuntimeError as error:
        return error
    except asyncio.TimeoutError:
        pytest.fail(f"stop() awaited on another loop hung (> {within} s)")
    return None


def assert_clear_loop_error(error: RuntimeError) -> None:
    assert "loop" in str(error), f"the error names the problem: {error}"


# --- stopped from another loop --------------------------------------------------


async def on_loop_a(loop_a: LoopThread, call: Callable[[], Awaitable[None]]) -> None:
    """Await `call()` (a runner's start or stop) on loop A."""

    async def run() -> None:
        await call()

    await loop_a.run(run())


@asyncio_only
async def test_stop_awaited_on_another_loop_in_another_thread() -> None:
    # Loop A (a thread of its own) starts the runner and keeps running; this
    # test's loop stops it: a correct stop — the trigger's cleanup ran (on
    # loop A) before stop() returned, and nothing fires afterwards.
    loop_a = LoopThread(running_loop_factory())
    watched = Watched()
    runner = TriggerRunner(watched.triggers(), FakeConnection())
    try:
        await on_loop_a(loop_a, runner.start)
        await watched.both_running()
        assert await stop_from_here(runner) is None
        assert watched.cleaned_up_on == ["loop-A"]
        assert not runner.is_running
        await watched.none_fires()
    finally:
        loop_a.close()


@asyncio_only
async def test_a_runner_whose_start_loop_closed_is_stopped_and_starts_again_here() -> None:
    # As when asyncio.run() returns with the runner started: closing loop A
    # cancelled the Python trigger and stopped the runner. A stop() awaited
    # here is prompt and changes nothing; the runner starts again, here.
    loop_a = LoopThread(running_loop_factory())
    watched = Watched()
    runner = TriggerRunner(watched.triggers(), FakeConnection())
    try:
        await on_loop_a(loop_a, runner.start)
        await watched.both_running()
    finally:
        loop_a.close()
    assert watched.cleaned_up_on == ["loop-A"], "closing loop A cancelled the trigger"
    assert not runner.is_running
    await watched.none_fires()
    assert await stop_from_here(runner) is None

    watched.waiting.clear()
    async with runner:  # started again, on this loop
        ticks = watched.ticks
        await wait_for(lambda: watched.ticks >= ticks + 3 and watched.waiting.is_set())
    assert watched.cleaned_up_on == ["loop-A", threading.current_thread().name]


@asyncio_only
async def test_stop_awaited_on_another_loop_while_the_start_loop_is_paused() -> None:
    # Loop A is stopped but not closed (run_until_complete() returned; it may
    # run again later), so the trigger cannot finish its cleanup now. stop()
    # awaited elsewhere must not hang: a clear RuntimeError, promptly, which
    # stops nothing — the runner is stopped on loop A once it runs again.
    loop_a = LoopThread(running_loop_factory())
    watched = Watched()
    runner = TriggerRunner(watched.triggers(), FakeConnection())
    try:
        await on_loop_a(loop_a, runner.start)
        await watched.both_running()
        loop_a.pause()
        error = await stop_from_here(runner, within=5)
        assert error is not None, "stop() returned while loop A could run no cleanup"
        assert_clear_loop_error(error)
        assert watched.cleaned_up_on == []
    finally:
        if not loop_a.thread.is_alive():
            loop_a.resume()
        await on_loop_a(loop_a, runner.stop)
        loop_a.close()
    assert watched.cleaned_up_on == ["loop-A"]


# --- runners on loops of their own, in threads of their own -----------------------


class Session:
    """One thread's `asyncio.run`: a runner whose triggers send `<tag>:...`.

    It starts, meets the other session (both running at once), then either
    stops first, or checks that its own triggers go on after the other's stop
    and then stops. What went wrong is kept in `error` for the main thread.
    """

    def __init__(
        self,
        tag: str,
        factory: LoopFactory,
        meet: threading.Barrier,
        first_stopped: threading.Event,
    ) -> None:
        self.tag = tag
        self.factory = factory
        self.meet = meet
        self.first_stopped = first_stopped
        self.connection = FakeConnection()
        self.threads: set[str] = set()
        self.error: BaseException | None = None
        self.finished = False

    def count(self, kind: str) -> int:
        return self.connection.sent.count(f"{self.tag}:{kind}")

    async def more_of_each(self, more: int = 3) -> None:
        python, periodic = self.count("python"), self.count("every")
        await wait_for(
            lambda: (
                self.count("python") >= python + more and self.count("every") >= periodic + more
            ),
            timeout=10,
            what=f"{self.tag}: {more} more messages from each trigger",
        )

    async def main(self) -> None:
        async def python(ctx: TriggerContext) -> None:
            while True:
                self.threads.add(threading.current_thread().name)
                await ctx.send(f"{self.tag}:python")
                await asyncio.sleep(0.02)  # the pace of its sends

        async def periodic(ctx: TriggerContext) -> None:
            self.threads.add(threading.current_thread().name)
            await ctx.send(f"{self.tag}:every")

        runner = TriggerRunner([python, every(0.02, periodic)], self.connection)
        await runner.start()
        try:
            await self.more_of_each()
            await asyncio.to_thread(self.meet.wait, JOIN_WITHIN)
            if self.tag == "first":
                await asyncio.wait_for(runner.stop(), STOP_WITHIN)
                self.first_stopped.set()
            else:
                assert await asyncio.to_thread(self.first_stopped.wait, JOIN_WITHIN)
                await self.more_of_each()  # unaffected by the other runner's stop
                await asyncio.wait_for(runner.stop(), STOP_WITHIN)
            assert not runner.is_running
            sent = len(self.connection.sent)
            await asyncio.sleep(0.1)  # time for a stray send to show up (a negative)
            assert len(self.connection.sent) == sent, f"{self.tag}: fired after stop()"
        finally:
            await runner.stop(timeout=5)

    def run(self) -> None:
        try:
            run_to_completion(self.factory, self.main)
            self.finished = True
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            self.error = error


@pytest.mark.parametrize(
    ("first_loop", "second_loop"),
    [(name, name) for name in LOOPS] + ([("asyncio", "uvloop")] if "uvloop" in LOOPS else []),
)
def test_two_runners_on_two_loops_in_two_threads_run_independently(
    first_loop: str, second_loop: str
) -> None:
    meet = threading.Barrier(2)
    first_stopped = threading.Event()
    sessions = [
        Session("first", LOOPS[first_loop], meet, first_stopped),
        Session("second", LOOPS[second_loop], meet, first_stopped),
    ]
    threads = [
        threading.Thread(target=session.run, name=f"thread-{session.tag}", daemon=True)
        for session in sessions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_WITHIN)
    assert not any(thread.is_alive() for thread in threads), "deadlock: a session never ended"
    for session in sessions:
        if session.error is not None:
            raise session.error
        assert session.finished
        # Each runner sent only its own messages, from its own loop's thread.
        assert {content.split(":")[0] for content in session.connection.sent} == {session.tag}
        assert session.threads == {f"thread-{session.tag}"}


# --- built outside any loop; start() with no running loop -------------------------


@pytest.fixture
def built_outside_any_loop() -> tuple[TriggerRunner, FakeConnection]:
    # A sync fixture: no event loop is running here.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    connection = FakeConnection()

    async def python(ctx: TriggerContext) -> None:
        await ctx.send("python")

    async def periodic(ctx: TriggerContext) -> None:
        await ctx.send("every")

    return TriggerRunner([python, every(0.02, periodic)], connection), connection


async def test_a_runner_built_outside_any_loop_starts_inside_one(
    built_outside_any_loop: tuple[TriggerRunner, FakeConnection],
) -> None:
    runner, connection = built_outside_any_loop
    async with runner:
        await wait_for(lambda: "python" in connection.sent and connection.sent.count("every") >= 3)
    assert not runner.is_running


def test_start_with_no_running_loop_is_a_clear_error() -> None:
    connection = FakeConnection()

    async def python(ctx: TriggerContext) -> None:
        await ctx.send("python")

    async def periodic(ctx: TriggerContext) -> None:
        await ctx.send("every")

    runner = TriggerRunner([python, every(0.02, periodic)], connection)
    for starting in (runner.start(), runner.__aenter__()):
        # Driven by hand, outside any event loop.
        with pytest.raises(RuntimeError, match="no running event loop"):
            starting.send(None)
        assert not runner.is_running

    async def main() -> None:
        async with runner:  # not left half-started: it starts, in a loop
            await wait_for(lambda: "python" in connection.sent and "every" in connection.sent)

    run_to_completion(LOOPS["asyncio"], main)


# --- the loop each async test runs on ---------------------------------------------


async def test_async_tests_run_on_the_host_their_id_names(request: pytest.FixtureRequest) -> None:
    name: str = request.node.name
    if "[trio]" in name:
        assert sniffio.current_async_library() == "trio"
        return
    module = type(asyncio.get_running_loop()).__module__
    if "[uvloop]" in name:
        assert module.startswith("uvloop")
    else:
        assert "[asyncio]" in name or len(LOOPS) == 1, "the id names the loop"
        assert module.startswith("asyncio")


# --- a trigger that blocks the loop ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_trigger_blocking_the_loop_delays_others_but_breaks_nothing(
    kind: Kind, captured: pytest.LogCaptureFixture
) -> None:
    connection = FakeConnection()

    async def block_then_send(ctx: TriggerContext, send: Send, name: str) -> None:
        time.sleep(0.05)  # noqa: ASYNC251 - blocking the loop is the point
        await send(name)

    names = hostile_names(kind)
    repeating = {name for name in names if not name.startswith(("after_", "cron_"))}

    def blocked_again_and_again(probe: Probe) -> bool:
        return probe.entered_each(names) and probe.entered_each(repeating, times=3)

    probe = await run_hostile(connection, kind, blocked_again_and_again, body=block_then_send)
    assert error_records(captured) == []
    assert set(connection.sent) == names, "every blocking trigger's messages were sent"
    assert len(probe.returned) >= len(probe.entered) - len(names)
