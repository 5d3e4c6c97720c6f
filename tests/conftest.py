"""Fake connections (docs/contract.md §2), test triggers and bounded waits shared by the suite.

Timing in these tests is only ever checked through bounded polls with generous
limits: the fakes record what happened, the tests wait until it has. A test that
needs a trigger to be running waits for the trigger to say so (`sleeper`,
`Stubborn.started`, `until_set`), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from agent_triggers import TriggerRunner

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def loop_factories() -> dict[str, LoopFactory]:
    """The event loops the package supports here, by name: asyncio's, and uvloop
    where it is installed (never on Windows; not without the dev extras)."""
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """Run every async test on each of `loop_factories()`.

    pytest-asyncio's hook (1.4+; it replaces the deprecated `event_loop_policy`
    fixture) parametrises each async test with one loop per entry, its id showing
    the loop: `[asyncio]`, `[uvloop]`. An older pytest-asyncio ignores it
    (`optionalhook`) and runs the tests on asyncio's loop only.
    """
    return loop_factories()


def antigravity_sdk_missing() -> str | None:
    """Why google-antigravity cannot be installed here, or ``None``: then the dev
    extras have installed it, and the tests that drive it must run, not skip."""
    if sys.version_info < (3, 10):
        return "google-antigravity needs Python 3.10+"
    if platform.machine() == "aarch64":
        return "google-antigravity publishes no aarch64 Linux wheel"
    return None


def run_to_completion(factory: LoopFactory, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` on a new loop from `factory` (asyncio.run takes no
    loop factory before Python 3.12): run it, cancel what is left, close."""
    loop = factory()
    try:
        return loop.run_until_complete(main())
    finally:
        close_like_asyncio_run(loop)


def close_like_asyncio_run(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop that is not running as `asyncio.run` does: cancel its tasks
    and let them finish, finalise async generators, then close it."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


class SendFailedError(Exception):
    """What `RaisingConnection` raises from its send method."""


class FakeConnection:
    """A full connection: `send_trigger`, `is_idle` property and `wait_for_idle`.

    Starts idle; `set_idle(False)` puts the agent mid-turn. `waits` counts the
    `wait_for_idle()` calls begun, so a test can wait until a send is waiting.
    """

    def __init__(self, *, idle: bool = True) -> None:
        self.sent: list[str] = []
        self.waits = 0
        self._idle = idle
        # Created on first wait, inside the running loop (Python 3.9's Event binds
        # to a loop at construction).
        self._idle_event: asyncio.Event | None = None

    @property
    def is_idle(self) -> bool:
        return self._idle

    def set_idle(self, idle: bool) -> None:
        self._idle = idle
        if self._idle_event is not None:
            if idle:
                self._idle_event.set()
            else:
                self._idle_event.clear()

    async def wait_for_idle(self) -> None:
        self.waits += 1
        if self._idle_event is None:
            self._idle_event = asyncio.Event()
            if self._idle:
                self._idle_event.set()
        await self._idle_event.wait()

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class AntigravityConnection:
    """Antigravity's connection shape: only `send_trigger_notification`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_trigger_notification(self, content: str) -> None:
        self.sent.append(content)


class MethodIdleConnection:
    """`is_idle` is a zero-argument method, not a property."""

    def __init__(self, *, idle: bool) -> None:
        self.sent: list[str] = []
        self.idle = idle

    def is_idle(self) -> bool:
        return self.idle

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class AttributeIdleConnection:
    """`is_idle` is a plain instance attribute."""

    def __init__(self, *, idle: bool) -> None:
        self.sent: list[str] = []
        self.is_idle = idle

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class BareConnection:
    """Only `send_trigger`: no `is_idle`, no `wait_for_idle`."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.sent.append(content)


class RaisingConnection:
    """`send_trigger` raises `self.error` (the same instance every time)."""

    def __init__(self) -> None:
        self.error = SendFailedError("agent connection lost")
        self.attempts: list[str] = []

    async def send_trigger(self, content: str) -> None:
        self.attempts.append(content)
        raise self.error


async def wait_for(
    predicate: Callable[[], object], timeout: float = 5.0, what: str | None = None
) -> None:
    """Poll `predicate` every 10 ms until it is truthy; fail the test after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if predicate():
            return
        if loop.time() >= deadline:
            description = what or getattr(predicate, "__name__", repr(predicate))
            pytest.fail(f"timed out after {timeout} s waiting for: {description}")
        await asyncio.sleep(0.01)


async def until_set(event: asyncio.Event, timeout: float = 5.0, what: str | None = None) -> None:
    """Wait until `event` is set; fail the test after `timeout` s."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for: {what or 'the event to be set'}")


@asynccontextmanager
async def running(
    runner: TriggerRunner, *, stop_within: float = 10.0
) -> AsyncGenerator[None, None]:
    """`async with runner:`, with the stop on exit bounded: after `stop_within` s it
    raises `asyncio.TimeoutError` and fails the test instead of hanging it."""
    await runner.start()
    try:
        yield
    finally:
        await asyncio.wait_for(runner.stop(), stop_within)


def sleeper(started: asyncio.Event) -> Callable[[object], Coroutine[Any, Any, None]]:
    """A trigger that sets `started` once it runs, then sleeps until cancelled.

    `await until_set(started)` after `start()` is the point where it is running: a
    trigger cancelled before its first step never runs (docs/contract.md §4), so a
    test of what cancellation does to a running trigger waits for that first.
    """

    async def sleeper(ctx: object) -> None:
        started.set()
        await asyncio.sleep(3600)

    return sleeper


class Stubborn:
    """A trigger that swallows every cancellation until `release()`d: what
    `stop(timeout=...)` abandons.

    Make it inside the running loop (Python 3.9's Event binds to a loop at
    construction). The runner names it by its class: `'Stubborn'`.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.cancellations = 0
        self.finished = False
        self.started = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, ctx: object) -> None:
        self.calls += 1
        self.started.set()
        try:
            while not self.released.is_set():
                try:
                    await self.released.wait()
                except asyncio.CancelledError:
                    self.cancellations += 1
        finally:
            self.finished = True

    def release(self) -> None:
        self.released.set()


async def stays_false(predicate: Callable[[], object], duration: float = 0.1) -> bool:
    """Whether `predicate` stays falsy for `duration` s (polled every 10 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    while loop.time() < deadline:
        if predicate():
            return False
        await asyncio.sleep(0.01)
    return not predicate()


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records of the `agent_triggers` logger (the contract, §4: how failures are logged)."""
    return [
        record
        for record in caplog.records
        if record.name == "agent_triggers" and record.levelno == logging.ERROR
    ]


@pytest.fixture
def connection() -> FakeConnection:
    return FakeConnection()


@pytest.fixture
def busy_connection() -> FakeConnection:
    return FakeConnection(idle=False)


@pytest.fixture
def antigravity_connection() -> AntigravityConnection:
    return AntigravityConnection()


@pytest.fixture
def method_idle_connection() -> MethodIdleConnection:
    return MethodIdleConnection(idle=False)


@pytest.fixture
def bare_connection() -> BareConnection:
    return BareConnection()


@pytest.fixture
def raising_connection() -> RaisingConnection:
    return RaisingConnection()
