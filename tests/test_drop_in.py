"""Drop-in fidelity: what code written for Antigravity's triggers relies on.

- ``await start()`` makes every coroutine trigger's task itself, on the calling
  loop, in list order, before it returns: after one ``await asyncio.sleep(0)``
  each has run to its first ``await``, and one that raised there is logged.
  Under trio (docs/contract.md §7) ``start()`` makes them trio tasks the same
  way, but trio's scheduler runs the tasks ready together (the caller's
  included) in an order of its own choosing, on purpose: there the tests wait
  (bounded) for the first steps, and take them in any order.
- Every trigger object the package returns is its own copy (``copy.copy`` and
  ``copy.deepcopy`` return it): agent configs copy their trigger lists.

(The real Antigravity ``Agent`` and Antigravity's own trigger tests are driven in
``test_antigravity_agent.py`` and ``test_antigravity_peer.py``.)
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from agent_triggers import TriggerContext, TriggerRunner, after, at, cron, every, on_file_change
from agent_triggers._core import NativeTrigger

from conftest import (
    FakeConnection,
    asyncio_only,
    cancelled,
    error_records,
    on_trio,
    wait_for,
)


def recording(steps: list[str], name: str) -> Callable[[TriggerContext], Awaitable[None]]:
    async def trigger(ctx: TriggerContext) -> None:
        steps.append(f"{name} first step")
        try:
            await anyio.Event().wait()
        except cancelled():
            steps.append(f"{name} cancelled")
            raise

    return trigger


async def first_steps(taken: Callable[[], object]) -> None:
    """Let the triggers `start()` made take their first step, until `taken()`.

    On asyncio that is one ``await asyncio.sleep(0)`` (what Antigravity's own
    tests rely on): `taken()` is asserted after it, never waited for. On trio,
    whose scheduler may run the caller again before the tasks it made, wait
    (bounded) for `taken()`.
    """
    if on_trio():
        await wait_for(taken, what="each trigger's first step")
    else:
        await asyncio.sleep(0)


def in_start_order(steps: list[str], expected: list[str]) -> list[str]:
    """`steps`, to compare with `expected` (in list order): as they are on asyncio,
    whose loop runs tasks in the order they were made; on trio, whose scheduler
    shuffles the tasks ready together, put in `expected`'s order (a step
    missing, taken twice or unexpected still shows)."""
    if not on_trio():
        return steps
    return sorted(steps, key=lambda step: expected.index(step) if step in expected else -1)


async def test_start_returns_with_each_trigger_a_task_run_to_its_first_await_in_list_order(
    connection: FakeConnection,
) -> None:
    steps: list[str] = []
    names = [f"t{i}" for i in range(6)]

    async def tick(ctx: object) -> None:
        steps.append("every")

    triggers: list[Callable[[TriggerContext], Awaitable[None]] | NativeTrigger]
    triggers = [recording(steps, name) for name in names]
    triggers.insert(3, every(3600, tick))  # a native trigger keeps its schedule
    runner = TriggerRunner(triggers, connection)
    expected = [f"{name} first step" for name in names]
    async with runner:
        assert steps == []  # made, not run: start() itself awaits no trigger
        await first_steps(lambda: len(steps) >= len(names))
        assert in_start_order(steps, expected) == expected


async def test_stop_right_after_start_cancels_each_trigger_at_its_first_await(
    connection: FakeConnection,
) -> None:
    # Antigravity's test_stop_cancels_all_triggers, in this suite's terms.
    steps: list[str] = []
    runner = TriggerRunner([recording(steps, "a"), recording(steps, "b")], connection)
    await runner.start()
    await first_steps(lambda: len(steps) >= 2)
    await runner.stop()
    first = ["a first step", "b first step"]
    assert in_start_order(steps[:2], first) == first
    assert sorted(steps[2:]) == ["a cancelled", "b cancelled"]  # in no set order
    assert not runner.is_running


async def test_stop_awaited_at_once_after_start_cancels_every_trigger_before_it_runs(
    connection: FakeConnection,
) -> None:
    # As under Antigravity's runner: stop() on the runner's loop cancels each
    # task before it first waits, so no trigger takes a step; their coroutines
    # are closed, never reported "never awaited" (warnings are errors here).
    steps: list[str] = []
    runner = TriggerRunner([recording(steps, "a"), recording(steps, "b")], connection)
    await runner.start()
    await runner.stop()
    assert steps == []
    assert not runner.is_running


async def test_a_trigger_failing_in_its_first_step_is_logged_within_that_step(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    steps: list[str] = []

    async def bad(ctx: TriggerContext) -> None:
        raise ValueError("boom")

    caplog.set_level(logging.ERROR, logger="agent_triggers")
    async with TriggerRunner([bad, recording(steps, "good")], connection) as runner:
        await first_steps(lambda: error_records(caplog) and steps)
        assert [record.getMessage() for record in error_records(caplog)] == [
            "trigger 'bad' failed: ValueError: boom"
        ]
        assert steps == ["good first step"]
        assert runner.is_running


async def test_a_trigger_that_is_not_async_is_logged_within_its_first_step(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    def not_async(ctx: TriggerContext) -> int:
        return 42

    caplog.set_level(logging.ERROR, logger="agent_triggers")
    async with TriggerRunner([not_async], connection):  # type: ignore[list-item]
        await first_steps(lambda: error_records(caplog))
        assert [record.getMessage() for record in error_records(caplog)] == [
            "trigger 'not_async' failed: TypeError: trigger 'not_async' must return an "
            "awaitable (is it an async def?), got int"
        ]


async def test_a_cancelled_error_the_trigger_raises_itself_is_its_failure(
    connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    # Under trio too: asyncio's CancelledError is no cancellation there, and
    # trio's own Cancelled cannot be made by user code.
    async def gives_up(ctx: TriggerContext) -> None:
        raise asyncio.CancelledError("nobody asked")

    caplog.set_level(logging.ERROR, logger="agent_triggers")
    async with TriggerRunner([gives_up], connection):
        await wait_for(lambda: error_records(caplog))
    [record] = error_records(caplog)
    assert record.getMessage().startswith("trigger 'gives_up' failed: CancelledError")


async def test_a_restart_makes_the_tasks_again_in_list_order(connection: FakeConnection) -> None:
    steps: list[str] = []
    runner = TriggerRunner([recording(steps, "a"), recording(steps, "b")], connection)
    first = ["a first step", "b first step"]
    for _ in range(2):
        steps.clear()
        async with runner:
            await first_steps(lambda: len(steps) >= 2)
            assert in_start_order(steps, first) == first
        assert sorted(steps[2:]) == ["a cancelled", "b cancelled"]


async def test_each_trigger_runs_in_a_task_of_its_own_on_the_calling_host(
    connection: FakeConnection,
) -> None:
    seen: list[tuple[anyio.TaskInfo, anyio.lowlevel.EventLoopToken]] = []

    async def where(ctx: TriggerContext) -> None:
        seen.append((anyio.get_current_task(), anyio.lowlevel.current_token()))
        await anyio.sleep_forever()  # alive together, so their tasks are told apart

    async with TriggerRunner([where, where], connection):
        await wait_for(lambda: len(seen) == 2)
    caller = anyio.get_current_task()
    assert [token for _, token in seen] == [anyio.lowlevel.current_token()] * 2
    tasks = {task.id for task, _ in seen}
    assert len(tasks) == 2
    assert caller.id not in tasks


@asyncio_only
async def test_each_trigger_runs_in_a_task_of_its_own_on_the_calling_loop(
    connection: FakeConnection,
) -> None:
    # asyncio's own objects: each an asyncio.Task of the very loop that started it.
    seen: list[tuple[asyncio.Task[object] | None, asyncio.AbstractEventLoop]] = []

    async def where(ctx: TriggerContext) -> None:
        seen.append((asyncio.current_task(), asyncio.get_running_loop()))

    async with TriggerRunner([where, where], connection):
        await asyncio.sleep(0)
    caller = asyncio.current_task()
    assert len(seen) == 2
    assert [loop for _, loop in seen] == [asyncio.get_running_loop()] * 2
    tasks = {task for task, _ in seen}
    assert len(tasks) == 2
    assert caller not in tasks


def native_triggers(tmp_path: Path) -> list[object]:
    async def callback(ctx: object, *changes: object) -> None:
        pass

    return [
        every(1, callback),
        after(1, callback),
        at(datetime.datetime.now(datetime.timezone.utc), callback),
        cron("*/5 * * * *", callback),
        on_file_change(tmp_path, callback),
    ]


def test_every_native_trigger_is_its_own_copy(tmp_path: Path) -> None:
    for trigger in native_triggers(tmp_path):
        assert copy.copy(trigger) is trigger
        assert copy.deepcopy(trigger) is trigger


def test_a_deep_copied_config_holds_the_same_triggers(tmp_path: Path) -> None:
    triggers = native_triggers(tmp_path)
    config = {"triggers": triggers, "name": "agent"}
    copied = copy.deepcopy(config)
    assert copied["triggers"] is not triggers
    assert all(a is b for a, b in zip(copied["triggers"], triggers, strict=True))


async def test_a_copied_trigger_runs_as_the_original(connection: FakeConnection) -> None:
    calls: list[str] = []

    async def tick(ctx: object) -> None:
        calls.append("tick")

    trigger = copy.deepcopy(every(0.01, tick))
    async with TriggerRunner([trigger], connection):
        await wait_for(lambda: len(calls) >= 2)
