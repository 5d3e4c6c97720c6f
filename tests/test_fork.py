"""After os.fork(), the child can build and run a runner of its own — never a hang.

Requirement: after ``os.fork()``, the child can build and run a new runner (or gets a
clear ``RuntimeError`` saying why not) — never a hang. This implementation supports it
(``rust/python/src/runtime.rs``: a forked child gets a tokio runtime and a timer thread
of its own), so the tests hold the child to success.

Each child runs a runner of every kind of trigger with ``asyncio.run``, waits until each
has fired, stops it, and reports by exit code (``os._exit``: a forked copy of pytest
must never return into pytest), with a traceback through a pipe when it fails. The
parent waits for it for at most ``CHILD_TIMEOUT`` seconds, then kills it and fails.

Run as a script, this file forks from a fresh interpreter: ``python tests/test_fork.py
fresh`` before any runner was used, ``python tests/test_fork.py exit`` over runners busy
in another thread, with children that exit normally (``atexit`` hooks and all), and
``python tests/test_fork.py drop-inherited``: a child that drops a runner it inherited
while its own triggers are armed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import anyio
import pytest

from agent_triggers import (
    FileChange,
    TriggerContext,
    TriggerRunner,
    after,
    cron,
    every,
    on_file_change,
)

from conftest import FakeConnection, asyncio_only, bounded, running, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

# The parent gives a child this long, then kills it and fails the test. A healthy child
# takes about a second (cron fires on whole seconds).
CHILD_TIMEOUT = 20.0
# The child's own safety net, should its parent be gone: SIGALRM ends it.
CHILD_ALARM = 30
# How long the child waits for its triggers to fire, and for stop() to return.
CHILD_WAIT = 10.0
EXIT_FAILED = 1
EXIT_HUNG = 3  # only the script: a child of the fresh interpreter had to be killed
# `exit` script: children that exit at once, each given this long to be gone. A healthy
# one takes well under 0.1 s; 100 of them catch a hang that one fork in 20 or 30 hits.
EXIT_FORKS = 100
EXIT_TIMEOUT = 5.0


# --- the child --------------------------------------------------------------------------


async def exercise_a_runner(directory: Path) -> None:
    """Start a runner with every kind of trigger, wait until each fired, stop it."""
    connection = FakeConnection()
    fired: set[str] = set()
    cleaned_up: list[str] = []

    async def python_trigger(ctx: TriggerContext) -> None:
        try:
            while True:
                await ctx.send("python")
                fired.add("python")
                await anyio.sleep(0.01)  # the pace of its sends
        finally:
            cleaned_up.append("python")

    async def on_tick(ctx: TriggerContext) -> None:
        fired.add("every")

    async def once(ctx: TriggerContext) -> None:
        fired.add("after")

    async def on_cron(ctx: TriggerContext) -> None:
        fired.add("cron")

    async def on_files(ctx: TriggerContext, changes: list[FileChange]) -> None:
        fired.add("on_file_change")

    expected = {"python", "every", "after", "cron", "on_file_change"}
    runner = TriggerRunner(
        [
            python_trigger,
            every(0.01, on_tick),
            after(0, once),
            cron("* * * * * *", on_cron),
            on_file_change(directory, on_files, debounce=0.01),
        ],
        connection,
    )
    async with running(runner, stop_within=CHILD_WAIT):
        deadline = anyio.current_time() + CHILD_WAIT
        written = 0
        while not expected <= fired:
            if anyio.current_time() > deadline:
                raise AssertionError(f"in {CHILD_WAIT} s only {sorted(fired)} fired")
            # Until the watcher reports one: it may take a moment to be set up.
            if "on_file_change" not in fired:
                (directory / f"file{written}").write_text("x")
                written += 1
            await anyio.sleep(0.05)  # the pace of the poll (and of the writes)
    assert not runner.is_running, "still running after stop()"
    assert cleaned_up == ["python"], "the Python trigger's finally block did not run"
    assert "python" in connection.sent


async def stop_the_inherited_runner(runner: TriggerRunner) -> None:
    """In the child: stop a runner the parent had started. Its tasks belong to the
    parent's loop, which does not run here: a clear RuntimeError is an answer too."""
    try:
        await bounded(runner.stop(), CHILD_WAIT / 2)
    except RuntimeError as error:
        refusal = str(error)
    else:
        assert not runner.is_running
        return
    assert "fork" in refusal or "process" in refusal, f"an unclear RuntimeError: {refusal}"


def run_a_runner_here() -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(exercise_a_runner(Path(directory)))


def be_the_child(work: Callable[[], None], report: int) -> NoReturn:
    """Do `work`; exit 0 if it returned, else write the traceback to `report`, exit 1."""
    code = EXIT_FAILED
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(CHILD_ALARM)
        work()
        code = 0
    except BaseException:  # noqa: BLE001 - everything is reported to the parent
        os.write(report, traceback.format_exc()[-8000:].encode())
    finally:
        os._exit(code)


# --- the parent -------------------------------------------------------------------------


def fork(work: Callable[[], None]) -> tuple[int, int]:
    """Fork a child that does `work`: its pid, and the pipe it reports failures on."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns (DeprecationWarning) when a process with threads forks.
        # These tests fork over the runner's threads (tokio workers, the timer thread)
        # on purpose: that is what is tested. The warning comes in the parent after
        # the child exists, so pytest's filterwarnings=error would raise it there and
        # lose the child's pid; it is silenced for this call alone.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(read_end)
        be_the_child(work, write_end)
    os.close(write_end)
    return pid, read_end


def read_report(report: int) -> str:
    """All the child wrote (it has exited: its end of the pipe is closed)."""
    chunks: list[bytes] = []
    while chunk := os.read(report, 65536):
        chunks.append(chunk)
    os.close(report)
    return b"".join(chunks).decode(errors="replace")


def wait_blocking(pid: int, timeout: float) -> int | None:
    """The child's exit code, waiting at most `timeout` s (None: killed as hung)."""
    deadline = time.monotonic() + timeout
    while (code := reap(pid)) is None:
        if time.monotonic() >= deadline:
            kill(pid)
            return None
        time.sleep(0.005)  # the poll interval
    return code


def reap(pid: int) -> int | None:
    """The child's exit code if it has exited (a signal `n` is `-n`), else None."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


async def child_outcome(pid: int, report: int) -> tuple[int, str]:
    """Wait (without blocking the loop) for the child: its exit code and report.

    Past CHILD_TIMEOUT the child is killed and the test fails: a hang.
    """
    deadline = time.monotonic() + CHILD_TIMEOUT
    while (code := reap(pid)) is None:
        if time.monotonic() >= deadline:
            kill(pid)
            pytest.fail(
                f"the forked child hung: killed after {CHILD_TIMEOUT} s; "
                f"it reported: {read_report(report) or 'nothing'}"
            )
        await anyio.sleep(0.02)  # the poll interval
    return code, read_report(report)


def native_threads() -> list[str] | None:
    """The names of this process's agent_triggers threads (None: no /proc to tell)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names: list[str] = []
    for task in tasks.iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            continue
    # "agent-triggers" (tokio workers) and "agent-triggers-timer", cut to 15 characters
    return [name for name in names if name.startswith("agent-triggers")]


# --- the tests --------------------------------------------------------------------------


# The child runs its own runner with asyncio.run: a child forked inside a trio
# run inherits trio's thread-local run state (sniffio and anyio then say "trio"
# in the child's asyncio loop), and trio does not support forking from inside a
# run. So these two fork from asyncio only; the inherited-runner test below
# forks from every host.
@asyncio_only
async def test_a_child_forked_while_a_runner_runs_runs_one_of_its_own(tmp_path: Path) -> None:
    connection = FakeConnection()
    ticks = [0]

    async def tick(ctx: TriggerContext) -> None:
        ticks[0] += 1

    async def python_loop(ctx: TriggerContext) -> None:
        while True:
            await ctx.send("parent")
            await anyio.sleep(0.001)  # the pace of its sends

    async def noop(ctx: TriggerContext) -> None:
        pass

    async def on_files(ctx: TriggerContext, changes: list[FileChange]) -> None:
        pass

    # Busy: ticks due every millisecond, so that the forks land while the timer thread
    # and the tokio workers are handing calls to the loop.
    parent = TriggerRunner(
        [
            *(every(0.001, tick) for _ in range(5)),
            python_loop,
            cron("* * * * * *", noop),
            on_file_change(tmp_path, on_files),
        ],
        connection,
    )
    async with parent:
        await wait_for(lambda: ticks[0] > 20 and connection.sent, what="the parent's triggers")
        threads = native_threads()
        assert threads is None or threads, "no runner threads to fork over: the test is moot"
        for attempt in range(3):
            pid, report = fork(run_a_runner_here)
            code, details = await child_outcome(pid, report)
            assert code == 0, f"child {attempt} exited with {code}:\n{details}"
        # The forks did not disturb the parent's runner.
        before = ticks[0]
        await wait_for(lambda: ticks[0] > before + 20, what="the parent's runner still ticking")
        assert parent.is_running
    assert not parent.is_running


@asyncio_only
async def test_a_child_of_a_process_that_used_every_cron_and_file_watching(
    tmp_path: Path,
) -> None:
    # The parent uses each kind, then stops: its runtime, timer thread and watcher
    # have all been started before the fork.
    await exercise_a_runner(tmp_path)
    pid, report = fork(run_a_runner_here)
    code, details = await child_outcome(pid, report)
    assert code == 0, f"child exited with {code}:\n{details}"
    # And the parent still can, after the fork.
    await exercise_a_runner(tmp_path)


def run_this_script(script: str, timeout: float) -> None:
    """Run this file as `script` in a fresh interpreter; fail unless it exits 0."""
    done = subprocess.run(
        [sys.executable, __file__, script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"exit code {done.returncode}:\n{done.stdout}\n{done.stderr}"


def test_a_child_forked_before_any_runner_was_used() -> None:
    """In a fresh interpreter (this one has used runners): import, fork, run in the child."""
    # Its own wait for the child is CHILD_TIMEOUT.
    run_this_script("fresh", timeout=CHILD_TIMEOUT + 30)


async def test_a_child_stopping_the_runner_it_inherited_started_gets_an_answer() -> None:
    async def python_trigger(ctx: TriggerContext) -> None:
        await anyio.sleep_forever()  # in flight until cancelled

    parent = TriggerRunner([python_trigger], FakeConnection())
    async with parent:
        pid, report = fork(lambda: asyncio.run(stop_the_inherited_runner(parent)))
        code, details = await child_outcome(pid, report)
        assert code == 0, f"child exited with {code}:\n{details}"


def test_a_child_dropping_a_runner_it_inherited_keeps_its_own_triggers() -> None:
    """A runner collected in the child disarms what it armed in the parent — in the
    parent's timer, not in the child's: the child's own triggers keep ticking. Run in a
    fresh interpreter, so that the parent's timer keys are the first ones handed out
    (a child whose timer counted its keys again from 1 would give its own triggers the
    very keys the inherited runner cancels)."""
    run_this_script("drop-inherited", timeout=CHILD_TIMEOUT + 30)


def test_children_forked_over_busy_runner_threads_exit_normally_without_hanging() -> None:
    """A child that exits normally runs the atexit hook that closes the gate between
    tokio threads and Python; a fork taken while a tokio thread was inside must not
    leave that hook waiting for a thread the child does not have, nor one taken while a
    tokio thread was making its Python thread state leave the child hung in os.fork()
    itself (CPython 3.11 clears the child's thread list under a lock that thread held)."""
    run_this_script("exit", timeout=50)


def churn_runners(stop: threading.Event) -> None:
    """Start and stop runners on a loop of this thread's own until `stop` is set."""

    async def tick(ctx: TriggerContext) -> None:
        pass

    async def python_loop(ctx: TriggerContext) -> None:
        while True:
            await ctx.send("busy")
            await anyio.lowlevel.checkpoint()

    async def churn() -> None:
        while not stop.is_set():
            runner = TriggerRunner(
                [every(0.0005, tick), after(0, tick), python_loop], FakeConnection()
            )
            await runner.start()
            await anyio.sleep(0.001)  # runs a moment between start and stop
            await runner.stop()

    asyncio.run(churn())


def forks_exiting_normally() -> int:
    """The `exit` script: EXIT_FORKS children, forked while another thread starts and
    stops runners, each exiting normally at once; 0 if each was gone in time."""
    stop = threading.Event()
    churning = threading.Thread(target=churn_runners, args=(stop,))
    churning.start()
    try:
        time.sleep(0.2)  # the churn gets going: the forks are to land in the middle of it
        for attempt in range(EXIT_FORKS):
            with warnings.catch_warnings():
                # As in fork(): the threads are the point (3.12+ warns about them).
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(CHILD_ALARM)
                sys.exit(0)  # a normal exit: atexit hooks, interpreter finalization
            code = wait_blocking(pid, EXIT_TIMEOUT)
            if code != 0:
                what = "hung at exit" if code is None else f"exited with {code}"
                print(f"child {attempt} of {EXIT_FORKS} {what}", file=sys.stderr)
                return EXIT_HUNG if code is None else EXIT_FAILED
        return 0
    finally:
        stop.set()
        churning.join()


def fork_in_a_fresh_interpreter() -> int:
    """The script: the exit code of a child forked before any runner was used."""
    threads = native_threads()
    if threads:
        print(f"agent_triggers threads before any runner was used: {threads}", file=sys.stderr)
        return EXIT_FAILED
    pid, report = fork(run_a_runner_here)
    code = wait_blocking(pid, CHILD_TIMEOUT)
    if code is None:
        print(f"the forked child hung: killed after {CHILD_TIMEOUT} s", file=sys.stderr)
    print(read_report(report), file=sys.stderr)
    return EXIT_HUNG if code is None else code


# `drop-inherited` script: how many triggers each side arms.
INHERITED_ARMED = 50


async def noop(ctx: TriggerContext) -> None:
    pass


async def arm_own_then_drop_inherited(holder: list[TriggerRunner]) -> None:
    """In the child: arm a runner of its own, then let the inherited one be collected
    (its last reference is in `holder`) before the child's triggers first fire."""
    ticks = [0] * INHERITED_ARMED

    def counting(index: int) -> Callable[[TriggerContext], Awaitable[None]]:
        async def tick(ctx: TriggerContext) -> None:
            ticks[index] += 1

        return tick

    own = TriggerRunner(
        [every(0.2, counting(index)) for index in range(INHERITED_ARMED)], FakeConnection()
    )
    await own.start()
    try:
        holder.clear()
        gc.collect()
        await wait_for(
            lambda: min(ticks) >= 2,
            timeout=CHILD_WAIT,
            what="every trigger of the child's own runner ticking",
        )
    finally:
        await bounded(own.stop(), CHILD_WAIT / 2)


def drop_an_inherited_runner() -> int:
    """The `drop-inherited` script: the exit code of a child that dropped the runner it
    inherited (armed: INHERITED_ARMED triggers an hour out) while its own were armed."""

    async def parent() -> int:
        # Only the list holds the runner: the child can let go of it.
        holder = [
            TriggerRunner([every(3600, noop) for _ in range(INHERITED_ARMED)], FakeConnection())
        ]
        await holder[0].start()
        pid, report = fork(lambda: asyncio.run(arm_own_then_drop_inherited(holder)))
        code = wait_blocking(pid, CHILD_TIMEOUT)
        await holder[0].stop()
        if code is None:
            print(f"the forked child hung: killed after {CHILD_TIMEOUT} s", file=sys.stderr)
        print(read_report(report), file=sys.stderr)
        return EXIT_HUNG if code is None else code

    return asyncio.run(parent())


if __name__ == "__main__":
    scripts = {
        "fresh": fork_in_a_fresh_interpreter,
        "exit": forks_exiting_normally,
        "drop-inherited": drop_an_inherited_runner,
    }
    sys.exit(scripts[sys.argv[1]]())
