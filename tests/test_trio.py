"""What only trio has (docs/contract.md §7): shielded cleanup, strict exception
groups, the run's end, Ctrl-C under `trio.run`, `anyio.run(backend="trio")`.

Everything else of §1-§6a and §8 is checked on trio by the rest of the suite,
which runs each async test on asyncio, uvloop and trio (conftest's `backends`).
The processes below are real `trio.run` programs: a clean exit is exit code 0
(or 130 after Ctrl-C) with nothing on stderr.
"""

from __future__ import annotations

import contextvars
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio

from agent_triggers import TriggerContext, TriggerRunner, every
from scripts import finish, needs_signals, spawn, wait_for_ready

from conftest import FakeConnection, bounded, until_set, wait_for

if sys.platform == "win32":
    pytest.skip("the trio host needs Unix in this release (§7)", allow_module_level=True)


@pytest.fixture
def anyio_backend() -> Any:
    return "trio"


def shielded_cleanup(started: trio.Event, cleanup: list[str]) -> Any:
    """A trigger that waits for ever and, cancelled, cleans up in a shielded
    scope that awaits — then says so in `cleanup`."""

    async def trigger(ctx: TriggerContext) -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.05)  # cleanup that awaits, shielded
                cleanup.append("after the shielded await")

    return trigger


async def test_stop_waits_for_shielded_cleanup_that_awaits() -> None:
    started = trio.Event()
    cleanup: list[str] = []
    runner = TriggerRunner([shielded_cleanup(started, cleanup)], FakeConnection())
    await runner.start()
    with trio.fail_after(5):
        await started.wait()
    await bounded(runner.stop(), 5)
    assert cleanup == ["after the shielded await"]
    assert not runner.is_running


async def test_a_trigger_sees_trio_cancelled_at_its_next_checkpoint() -> None:
    started = trio.Event()
    seen: list[type[BaseException]] = []

    async def trigger(ctx: TriggerContext) -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except BaseException as exc:
            seen.append(type(exc))
            raise

    runner = TriggerRunner([trigger], FakeConnection())
    await runner.start()
    with trio.fail_after(5):
        await started.wait()
    await bounded(runner.stop(), 5)
    assert seen == [trio.Cancelled]


async def test_triggers_run_as_trio_tasks_of_this_run_with_the_callers_contextvars() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("the caller's")
    seen: list[tuple[str, object, object]] = []
    ran = anyio.Event()

    async def trigger(ctx: TriggerContext) -> None:
        seen.append((var.get(), trio.lowlevel.current_trio_token(), trio.lowlevel.current_task()))
        var.set("changed inside")  # a copy: the caller's stays
        ran.set()

    async def callback(ctx: TriggerContext) -> None:
        seen.append((var.get(), trio.lowlevel.current_trio_token(), trio.lowlevel.current_task()))

    runner = TriggerRunner([trigger, every(0.01, callback)], FakeConnection())
    await runner.start()
    try:
        await until_set(ran)
        await wait_for(lambda: len(seen) >= 3)
    finally:
        await bounded(runner.stop(), 5)
    me = trio.lowlevel.current_task()
    assert all(value == "the caller's" for value, _, _ in seen), seen
    assert all(token is trio.lowlevel.current_trio_token() for _, token, _ in seen)
    assert all(task is not me for _, _, task in seen)
    assert var.get() == "the caller's"


async def test_a_failure_beside_the_runner_in_a_nursery_is_the_only_exception() -> None:
    """trio's strict exception groups: a sibling's error reaches the nursery's
    caller alone — the runner's stop (on `async with` exit) adds nothing to it."""
    cleaned = trio.Event()

    async def trigger(ctx: TriggerContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.set()

    runner = TriggerRunner([trigger], FakeConnection())

    async def run_triggers() -> None:
        async with runner:
            await trio.sleep_forever()

    async def fail() -> None:
        await wait_for(lambda: runner.is_running)
        raise ValueError("a sibling failed")

    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="a sibling failed")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_triggers)
            nursery.start_soon(fail)
    assert cleaned.is_set()
    assert not runner.is_running


async def test_a_cancelled_async_with_block_still_waits_for_cleanup() -> None:
    """`async with runner`'s exit is shielded (§7): cancelled, it still
    returns only once the triggers' cleanup has run, as a nursery's exit."""
    started = trio.Event()
    cleanup: list[str] = []
    runner = TriggerRunner([shielded_cleanup(started, cleanup)], FakeConnection())
    with trio.fail_after(10), trio.CancelScope() as scope:
        async with runner:
            await started.wait()
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert cleanup == ["after the shielded await"]
    assert not runner.is_running


async def test_a_stop_while_start_waits_for_the_nursery_wins() -> None:
    """`stop()` awaited while `start()` waits for its nursery (§7): that
    `start()` returns without starting anything; a later start starts."""
    calls: list[str] = []

    async def trigger(ctx: TriggerContext) -> None:
        calls.append("called")
        await trio.sleep_forever()

    runner = TriggerRunner([trigger], FakeConnection())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            # Runs once this task waits in start(): trio wakes a waiting
            # task only in a batch after the one the nursery opens in.
            nursery.start_soon(runner.stop)
            await runner.start()
        # Started, its trigger (which never returns) would be running.
        assert not runner.is_running
        assert runner.stats()[0].calls == 0
        await runner.start()
        await wait_for(lambda: calls == ["called"])
        await bounded(runner.stop(), 5)


def test_the_runner_stops_when_the_trio_run_ends() -> None:
    began: list[str] = []
    cleaned: list[str] = []
    ticks: list[float] = []

    async def trigger(ctx: TriggerContext) -> None:
        began.append("trigger")
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append("trigger")

    async def tick(ctx: TriggerContext) -> None:
        ticks.append(time.monotonic())

    runner = TriggerRunner([trigger, every(0.005, tick)], FakeConnection())

    async def main() -> None:
        runs, ticked = len(began), len(ticks)
        await runner.start()
        # Running: the trigger has taken its first step, the schedule ticks.
        await wait_for(lambda: len(began) > runs and len(ticks) >= ticked + 3)
        # returns with the runner started: no stop()

    trio.run(main)
    assert cleaned == ["trigger"]
    assert not runner.is_running
    ended = len(ticks)
    time.sleep(0.05)  # several intervals: a tick after the run's end would show
    assert len(ticks) == ended
    # And it starts again, in another run.
    trio.run(main)
    assert cleaned == ["trigger", "trigger"]
    assert not runner.is_running


def test_anyio_run_with_the_trio_backend() -> None:
    connection = FakeConnection()

    async def tick(ctx: TriggerContext) -> None:
        await ctx.send("tick")

    async def main() -> None:
        async with TriggerRunner([every(0.01, tick)], connection):
            await wait_for(lambda: len(connection.sent) >= 2)

    anyio.run(main, backend="trio")
    assert connection.sent[:2] == ["tick", "tick"]


async def test_a_native_trigger_on_its_own_in_a_trio_nursery() -> None:
    connection = FakeConnection()
    calls: list[str] = []

    async def tick(ctx: TriggerContext) -> None:
        calls.append("tick")
        try:
            await trio.sleep_forever()  # the callback cancelled mid-call
        finally:
            calls.append("cleaned")

    trig = every(0.01, tick)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trig, TriggerContext(connection))
        await wait_for(lambda: calls == ["tick"])
        nursery.cancel_scope.cancel()
    assert calls == ["tick", "cleaned"]


# --- the process: exits promptly, with its own exit code, stderr empty ------------

PRELUDE = """
import os, sys, time
import trio
from agent_triggers import TriggerRunner, after, cron, every, on_file_change

class Connection:
    async def send_trigger(self, content):
        if content == "hang":
            await trio.sleep_forever()

async def send(ctx, *changes):
    await ctx.send("tick")

async def busy(ctx):
    while True:
        await ctx.send("busy")
        time.sleep(0.002)  # Python code running when Ctrl-C lands, often
        await trio.sleep(0.001)

async def hang(ctx):
    await ctx.send("hang")

async def cleanup(ctx):
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await trio.sleep(0.01)
        print("cleaned", flush=True)

def runner(folder):
    ticks = [every(0.001, send, name=f"tick{i}") for i in range(100)]
    return TriggerRunner(
        [busy, hang, cleanup, after(0.01, send), cron("* * * * * *", send),
         on_file_change(folder, send), *ticks],
        Connection(),
    )

def ready():
    print("ready", flush=True)
"""


def test_trio_run_returning_with_a_runner_started_exits_cleanly(tmp_path: Path) -> None:
    process = spawn(
        PRELUDE,
        f"""
        async def main():
            folder = {str(tmp_path)!r}
            triggers = runner(folder)  # kept: a runner collected cancels its triggers
            await triggers.start()
            await trio.sleep(0.2)  # the triggers get busy: ticks come due
            with open(os.path.join(folder, "note.txt"), "w") as f:
                f.write("changed")
            await trio.sleep(0.1)  # the change's batch comes due
            ready()  # returns with the runner started: no stop()

        trio.run(main)
        """,
    )
    wait_for_ready(process)
    code, out, err, took = finish(process)
    assert (code, err) == (0, "")
    assert out.split() == ["cleaned"], "the trigger's shielded cleanup did not run"
    assert took < 5, f"exit took {took:.1f} s"


@needs_signals
@pytest.mark.parametrize("run", ["trio.run(main)", 'anyio.run(main, backend="trio")'])
@pytest.mark.parametrize("style", ["start", "async_with"])
def test_keyboard_interrupt_under_trio_exits_cleanly(style: str, run: str, tmp_path: Path) -> None:
    process = spawn(
        PRELUDE,
        f"""
        import anyio

        async def main():
            triggers = runner({str(tmp_path)!r})
            if {style!r} == "async_with":
                async with triggers:
                    ready()
                    await trio.sleep_forever()
            else:
                await triggers.start()
                ready()
                await trio.sleep_forever()

        try:
            {run}
        except KeyboardInterrupt:
            sys.exit(130)
        """,
    )
    wait_for_ready(process)
    time.sleep(0.2)  # let the triggers get busy: Ctrl-C lands among them
    process.send_signal(signal.SIGINT)
    code, out, err, took = finish(process)
    assert (code, err) == (130, "")
    assert out.split() == ["cleaned"], "the trigger's shielded cleanup did not run"
    assert took < 5, f"exit took {took:.1f} s"
