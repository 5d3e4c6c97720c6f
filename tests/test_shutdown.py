"""A runner whose event loop closes while it is started (asyncio.run returns
without stop()), then is collected: nothing of it survives, nothing fires."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path

import pytest

from agent_triggers import TriggerRunner, every

from conftest import FakeConnection


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.xfail(
    strict=False,
    raises=(AssertionError, pytest.PytestUnraisableExceptionWarning),
    reason="known defect, intermittent: a callback launched while asyncio.run() shuts down "
    "gets a task that never starts; it outlives the loop and its coroutine is never awaited",
)
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
        await asyncio.sleep(0.05)
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
        await asyncio.sleep(0.001)

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

needs_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="sends SIGINT, which Windows processes do not receive"
)


def spawn(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded: the script prints it or exits
    if line.strip() != "ready":
        _, err = process.communicate(timeout=30)
        pytest.fail(f"the script did not get ready: {line!r}\n{err}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str, float]:
    """Wait (bounded) for the process to exit: its code, stderr and how long it took."""
    began = time.monotonic()
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the process hung on exit\n{err}")
    return process.returncode, err, time.monotonic() - began


def test_asyncio_run_returning_with_a_runner_started_exits_cleanly(tmp_path: Path) -> None:
    process = spawn(
        f"""
        async def main():
            folder = {str(tmp_path)!r}
            await runner(folder).start()
            await asyncio.sleep(0.2)
            with open(os.path.join(folder, "note.txt"), "w") as f:
                f.write("changed")
            await asyncio.sleep(0.1)
            ready()  # returns with the runner started: no stop()

        asyncio.run(main())
        """
    )
    wait_for_ready(process)
    code, err, took = finish(process)
    assert (code, err) == (0, "")
    assert took < 5, f"exit took {took:.1f} s"


@needs_signals
@pytest.mark.xfail(
    strict=False,
    reason="known defect, intermittent (about 1 run in 30): a callback launched while "
    "asyncio.run() is shutting down gets a task that never starts, and its coroutine "
    "is reported as never awaited at exit",
)
@pytest.mark.parametrize("style", ["start", "async_with"])
def test_keyboard_interrupt_exits_cleanly(style: str, tmp_path: Path) -> None:
    process = spawn(
        f"""
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
            asyncio.run(main())
        except KeyboardInterrupt:
            sys.exit(130)
        """
    )
    wait_for_ready(process)
    time.sleep(0.2)  # let the triggers get busy
    process.send_signal(signal.SIGINT)
    code, err, took = finish(process)
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
        """
    )
    wait_for_ready(process)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    code, err, took = finish(process)
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
        f"""
        import gc, time
        loop = asyncio.new_event_loop()

        async def main():
            triggers = runner({str(tmp_path)!r})
            await triggers.start()
            await asyncio.sleep(0.2)
            return triggers

        triggers = loop.run_until_complete(main())
        loop.close()  # tasks still pending: never cancelled, never to run
        time.sleep(0.1)  # ticks fall due meanwhile, for a closed loop
        del triggers
        gc.collect()
        time.sleep(0.1)
        ready()
        """
    )
    wait_for_ready(process)
    code, err, took = finish(process)
    assert (code, err) == (0, "")
    assert took < 5, f"exit took {took:.1f} s"


@pytest.mark.parametrize("where", ["async_trigger", "sync_callable", "every_callback"])
def test_system_exit_from_a_trigger_ends_the_process_with_its_code(where: str) -> None:
    # asyncio lets SystemExit out of the loop; a trigger's is not a failure to log.
    process = spawn(
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
        """
    )
    wait_for_ready(process)
    code, err, took = finish(process)
    assert (code, err) == (3, "")
    assert took < 5, f"exit took {took:.1f} s"
