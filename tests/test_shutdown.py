"""A runner whose event loop closes while it is started (asyncio.run returns
without stop()), then is collected: nothing of it survives, nothing fires."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import time
import warnings
import weakref
from collections.abc import Coroutine
from pathlib import Path

import pytest

from agent_triggers import TriggerContext, TriggerRunner, after, cron, every, on_file_change
from scripts import finish, needs_signals, spawn, wait_for_ready

from conftest import FakeConnection, loop_factories, run_to_completion, wait_for


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_runner_left_started_on_a_closed_loop_is_collected_whole() -> None:
    callbacks: list[weakref.ref[object]] = []
    runners: list[TriggerRunner] = []  # outlive their loops, as in a long-lived app
    fired_after_close: list[int] = []
    closed = False

    async def session() -> None:
        async def tick(ctx: object) -> None:
            if closed:
                fired_after_close.append(1)

        callbacks.append(weakref.ref(tick))
        runner = TriggerRunner([every(0.002, tick)], FakeConnection())
        runners.append(runner)
        await runner.start()
        await asyncio.sleep(0.05)  # ticks come due while the loop runs
        # returns with the runner started: asyncio.run closes the loop

    before = open_fds()
    for _ in range(5):
        asyncio.run(session())
    closed = True
    asyncio.run(asyncio.sleep(0.1))  # ticks come due meanwhile, into closed loops
    runners.clear()
    gc.collect()
    assert [ref() for ref in callbacks] == [None] * 5, "callbacks still alive"
    assert open_fds() <= before, "file descriptors leaked"
    assert fired_after_close == []


@pytest.mark.parametrize("loop_name", list(loop_factories()))
def test_a_runner_whose_loop_closed_has_stopped_and_starts_again_elsewhere(
    loop_name: str, tmp_path: Path
) -> None:
    # asyncio.run() returns with the runner started: the runner stops with its
    # loop (no trigger fires for a loop that can run nothing, the file watch
    # is released) and starts again on the next loop without a stop().
    fired: list[str] = []
    cleaned_up: list[str] = []

    async def tick(ctx: TriggerContext, *changes: object) -> None:
        fired.append("tick")

    async def forever(ctx: TriggerContext) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append("forever")

    runner = TriggerRunner(
        [every(0.005, tick), forever, cron("* * * * * *", tick), on_file_change(tmp_path, tick)],
        FakeConnection(),
    )

    async def session() -> None:
        await runner.start()
        await wait_for(lambda: fired and cleaned_up == [] and runner.is_running)

    run_to_completion(loop_factories()[loop_name], session)
    assert not runner.is_running
    assert cleaned_up == ["forever"]
    assert "stopped" in repr(runner)

    async def again() -> None:
        fired.clear()
        async with runner:
            await wait_for(lambda: fired)
            (tmp_path / "new.txt").write_text("x")
            await wait_for(lambda: len(fired) >= 3)
        assert not runner.is_running

    run_to_completion(loop_factories()[loop_name], again)
    assert cleaned_up == ["forever", "forever"]


def test_a_call_launched_as_its_loop_stops_for_good_is_closed_not_left_unawaited() -> None:
    # The callback is called (its coroutine made) in the loop's last
    # iteration: its task's first step never runs — what happens when a tick
    # comes due as asyncio.run() ends. Once the loop is closed the call is
    # over: the coroutine is closed unstarted, not found "never awaited"
    # whenever the task is collected, and stop() ends at once. (asyncio's
    # loop only: uvloop still runs the step scheduled as it stops.)
    started: list[int] = []
    coroutines: list[weakref.ref[object]] = []

    async def body() -> None:
        started.append(1)

    def callback(ctx: TriggerContext) -> Coroutine[None, None, None]:
        asyncio.get_running_loop().stop()  # this iteration is the last
        coroutine = body()
        coroutines.append(weakref.ref(coroutine))
        return coroutine

    loop = asyncio.new_event_loop()
    runner = TriggerRunner([after(0, callback)], FakeConnection())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        starting = loop.create_task(runner.start())
        loop.run_forever()  # until the callback stops it
        assert starting.done()
        loop.close()
        asyncio.run(asyncio.wait_for(runner.stop(), 10))
        gc.collect()
    assert coroutines, "the callback was never called"
    assert started == []
    assert [ref() for ref in coroutines] == [None], "the coroutine is still alive"
    assert [str(w.message) for w in caught] == []


def test_a_trigger_started_as_its_loop_stops_for_good_never_runs_and_warns_nothing() -> None:
    # start() makes each coroutine trigger's task before it returns; the loop
    # stops in that same iteration, so no task takes its first step. Once
    # the loop is closed each is over, unstarted and quietly: no "coroutine
    # was never awaited", no "Task was destroyed but it is pending", and
    # stop() ends at once. (asyncio's loop only, as above.)
    called: list[int] = []

    async def trigger(ctx: TriggerContext) -> None:
        called.append(1)

    async def start_and_stop_the_loop(runner: TriggerRunner) -> None:
        await runner.start()
        asyncio.get_running_loop().stop()  # the triggers' first steps come after

    loop = asyncio.new_event_loop()
    runner = TriggerRunner([trigger, trigger], FakeConnection())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        starting = loop.create_task(start_and_stop_the_loop(runner))
        loop.run_forever()
        assert starting.done()
        loop.close()
        assert not runner.is_running
        asyncio.run(asyncio.wait_for(runner.stop(), 10))
        gc.collect()
    assert called == []
    assert [str(w.message) for w in caught] == []


# --- the process itself: exits promptly, with its own exit code, stderr empty ------

# Every kind of trigger, busy, plus a send that never returns: what a process
# has under way when it ends. Shared by the scripts below (run with -c).
PRELUDE = """
import asyncio, os, signal, sys, tempfile
from agent_triggers import TriggerRunner, after, cron, every, on_file_change

class Connection:
    async def send_trigger(self, content):
        if content == "hang":
            await asyncio.Future()

    @property
    def is_idle(self):
        return True

    async def wait_for_idle(self):
        return None

async def send(ctx, *changes):
    await ctx.send("tick")

async def busy(ctx):
    while True:
        await ctx.send("busy")
        await asyncio.sleep(0.001)  # the pace of its sends

async def hang(ctx):
    await ctx.send("hang")

def runner(folder):
    ticks = [every(0.001, send, name=f"tick{i}") for i in range(100)]
    return TriggerRunner(
        [busy, hang, after(0.01, send), cron("* * * * * *", send),
         on_file_change(folder, send), *ticks],
        Connection(),
    )

def ready():
    print("ready", flush=True)
"""

# What no clean exit prints; any of these on stderr fails a test.
NOISE = (
    "panicked",
    "Event loop is closed",
    "Task was destroyed but it is pending",
    "Exception ignored",
    "Traceback",
    "RuntimeWarning",
    "agent_triggers",
)


def test_asyncio_run_returning_with_a_runner_started_exits_cleanly(tmp_path: Path) -> None:
    process = spawn(
        PRELUDE,
        f"""
        async def main():
            folder = {str(tmp_path)!r}
            await runner(folder).start()
            await asyncio.sleep(0.2)  # the triggers get busy: ticks come due
            with open(os.path.join(folder, "note.txt"), "w") as f:
                f.write("changed")
            await asyncio.sleep(0.1)  # the change's batch comes due
            ready()  # returns with the runner started: no stop()

        asyncio.run(main())
        """,
    )
    wait_for_ready(process)
    code, _, err, took = finish(process)
    assert (code, err) == (0, "")
    assert took < 5, f"exit took {took:.1f} s"


@needs_signals
@pytest.mark.parametrize(
    "run",
    [
        "asyncio.run",
        pytest.param(
            "uvloop.run",
            marks=pytest.mark.skipif("uvloop" not in loop_factories(), reason="needs uvloop"),
        ),
    ],
)
@pytest.mark.parametrize("style", ["start", "async_with"])
def test_keyboard_interrupt_exits_cleanly(style: str, run: str, tmp_path: Path) -> None:
    # Regression: a callback launched in asyncio.run()'s last loop iteration
    # got a task that never ran; its coroutine was reported "never awaited"
    # at exit (about 1 run in 5 before the fix).
    process = spawn(
        PRELUDE,
        f"""
        {"import uvloop" if run == "uvloop.run" else ""}

        async def main():
            triggers = runner({str(tmp_path)!r})
            if {style!r} == "async_with":
                async with triggers:
                    ready()
                    await asyncio.sleep(3600)
            else:
                await triggers.start()
                ready()
                await asyncio.sleep(3600)

        try:
            {run}(main())
        except KeyboardInterrupt:
            sys.exit(130)
        """,
    )
    wait_for_ready(process)
    time.sleep(0.2)  # let the triggers get busy
    process.send_signal(signal.SIGINT)
    code, _, err, took = finish(process)
    assert (code, err) == (130, "")
    assert took < 5, f"exit took {took:.1f} s"


@needs_signals
@pytest.mark.parametrize("delay", [0.05, 0.13, 0.21])
def test_keyboard_interrupt_landing_anywhere_still_ends_the_loop(
    delay: float, tmp_path: Path
) -> None:
    # A loop run by hand has no SIGINT handler (nor has asyncio.run() before
    # 3.11): the KeyboardInterrupt is raised in whatever Python code runs on
    # the main thread — often the library's own, launching a callback. It
    # must reach the loop, not be logged as a trigger failure and lost.
    process = spawn(
        PRELUDE,
        f"""
        async def main():
            await runner({str(tmp_path)!r}).start()
            ready()
            await asyncio.sleep(3600)

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
        except KeyboardInterrupt:
            sys.exit(130)
        """,
    )
    wait_for_ready(process)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    code, _, err, took = finish(process)
    assert code == 130, err
    assert took < 5, f"exit took {took:.1f} s"
    # CPython's own race, not ours: a Ctrl-C that lands inside asyncio's
    # create_task (pure Python call_soon) leaves a half-made task it then
    # reports; user code can lose a coroutine the same way.
    cpython_race = re.compile(
        r"Task was destroyed but it is pending!|task: <Task pending .*|"
        r".*RuntimeWarning: coroutine .* was never awaited|"
        r"RuntimeWarning: Enable tracemalloc .*|\s+.*"
    )
    unexpected = [line for line in err.splitlines() if not cpython_race.fullmatch(line)]
    assert unexpected == [], err
    assert "KeyboardInterrupt" not in err, "the interrupt was logged, not raised"


def test_a_loop_closed_under_a_started_runner_is_handled(tmp_path: Path) -> None:
    process = spawn(
        PRELUDE,
        f"""
        import gc, time
        loop = asyncio.new_event_loop()

        async def main():
            triggers = runner({str(tmp_path)!r})
            await triggers.start()
            await asyncio.sleep(0.2)  # the triggers get busy: ticks come due
            return triggers

        triggers = loop.run_until_complete(main())
        loop.close()  # tasks still pending: never cancelled, never to run
        time.sleep(0.1)  # ticks fall due meanwhile, for a closed loop
        del triggers
        gc.collect()
        time.sleep(0.1)  # time for anything the collection set off to fail (a negative)
        ready()
        """,
    )
    wait_for_ready(process)
    code, _, err, took = finish(process)
    assert (code, err) == (0, "")
    assert took < 5, f"exit took {took:.1f} s"


@pytest.mark.parametrize("where", ["async_trigger", "sync_callable", "every_callback"])
def test_system_exit_from_a_trigger_ends_the_process_with_its_code(where: str) -> None:
    # asyncio lets SystemExit out of the loop; a trigger's is not a failure to log.
    process = spawn(
        PRELUDE,
        f"""
        async def quit_async(ctx):
            raise SystemExit(3)

        def quit_now(ctx):
            raise SystemExit(3)

        async def main():
            chosen = {{
                "async_trigger": quit_async,
                "sync_callable": quit_now,
                "every_callback": every(0.01, quit_async),
            }}[{where!r}]
            triggers = TriggerRunner([chosen, busy], Connection())
            await triggers.start()
            await asyncio.sleep(3600)

        ready()
        asyncio.run(main())
        """,
    )
    wait_for_ready(process)
    code, _, err, took = finish(process)
    assert (code, err) == (3, "")
    assert took < 5, f"exit took {took:.1f} s"


def test_system_exit_in_a_large_batch_starts_no_call_after_it() -> None:
    # 40 calls due at one instant, queued while the loop is blocked, are
    # drained in chunks; the first raises SystemExit. Every call of the batch
    # is a task before the exit goes up, so asyncio.run's shutdown cancels
    # them all before their first steps: no trigger code runs after it.
    process = spawn(
        PRELUDE,
        """
        import time

        def quit_now(ctx):
            raise SystemExit(3)

        async def tick(ctx):
            print("tick", flush=True)

        async def main():
            triggers = TriggerRunner(
                [every(0.05, quit_now)] + [every(0.05, tick) for _ in range(39)],
                Connection(),
            )
            await triggers.start()
            time.sleep(0.2)  # the loop blocked: the whole batch is queued meanwhile
            await asyncio.sleep(3600)

        ready()
        asyncio.run(main())
        """,
    )
    wait_for_ready(process)
    code, out, err, took = finish(process)
    assert (code, err) == (3, "")
    assert "tick" not in out
    assert took < 5, f"exit took {took:.1f} s"
