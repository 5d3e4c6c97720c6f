"""Fleets (docs/contract.md §9) in one process: several runners, each with its own
`RedisFleet` replica name, play the replicas, against a real redis-server.
The same with replica processes, killed and suspended: test_fleet_processes.py."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from redis_server import RedisServer, free_port

import agent_triggers as at
from agent_triggers import RedisFleet, TriggerContext, TriggerRunner

from conftest import FakeConnection, agent_trigger_logs, messages_at, noop, wait_for

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as redis:
        yield redis


@pytest.fixture
def redis_url(server: RedisServer) -> str:
    server.flush()
    return server.url


def nanos(when: datetime) -> int:
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def fnv1a_64(key: str) -> int:
    """The grid's phase hash, written here from its published definition."""
    value = 0xCBF29CE484222325
    for byte in key.encode():
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value


Calls = defaultdict[datetime, list[str]]


def recorder(calls: Calls, replica: str) -> Callable[..., Coroutine[Any, Any, None]]:
    async def call(ctx: TriggerContext, *changes: object) -> None:
        assert ctx.scheduled_at is not None
        calls[ctx.scheduled_at].append(replica)

    return call


async def started_replicas(
    stack: AsyncExitStack,
    url: str,
    make: Callable[[str], list[Any]],
    replicas: tuple[str, ...] = ("a", "b", "c"),
    **fleet: Any,
) -> list[TriggerRunner]:
    runners = [
        TriggerRunner(make(r), FakeConnection(), fleet=RedisFleet(url, replica=r, **fleet))
        for r in replicas
    ]
    for runner in runners:
        await runner.start()
        stack.push_async_callback(runner.stop)
    return runners


# --- RedisFleet: arguments, and the password never shown ---


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"url": 6379}, TypeError, ["url", "str", "int"]),
        ({"url": "http://:pw1@host/0"}, ValueError, ["redis://", "http"]),
        ({"url": "localhost:6379"}, ValueError, ["url"]),
        ({"url": "redis://h", "replica": ""}, ValueError, ["replica", "empty"]),
        ({"url": "redis://h", "replica": 7}, TypeError, ["replica", "str"]),
        ({"url": "redis://h", "claim_ttl": 0}, ValueError, ["claim_ttl"]),
        ({"url": "redis://h", "claim_ttl": 0.5}, ValueError, ["claim_ttl", "at least 1 second"]),
        ({"url": "redis://:pw1\udc80@h"}, ValueError, ["url", "UTF-8"]),
        ({"url": "redis://h", "claim_ttl": "10"}, TypeError, ["claim_ttl"]),
        ({"url": "redis://h", "on_unavailable": "maybe"}, ValueError, ["skip", "run", "maybe"]),
        ({"url": "redis://h", "on_unavailable": True}, TypeError, ["on_unavailable"]),
    ],
)
def test_bad_fleet_arguments_are_named(
    arguments: dict[str, Any], error: type[Exception], words: list[str]
) -> None:
    url = arguments.pop("url")
    with pytest.raises(error) as raised:
        RedisFleet(url, **arguments)
    for word in words:
        assert word in str(raised.value)
    for error_ in (raised.value, raised.value.__cause__, raised.value.__context__):
        assert "pw1" not in repr(error_)
        assert "pw1" not in repr(getattr(error_, "object", ""))


def test_the_password_is_never_shown() -> None:
    fleet = RedisFleet("redis://user:s3cret-pw@redis.internal:6380/2", replica="r1")
    assert fleet.url == "redis://user:***@redis.internal:6380/2"
    for shown in (repr(fleet), str(fleet), f"{fleet}", repr([fleet])):
        assert "s3cret-pw" not in shown
        assert "redis://user:***@redis.internal:6380/2" in shown
    with pytest.raises(TypeError) as raised:
        pickle.dumps(fleet)
    assert "s3cret-pw" not in str(raised.value)
    assert copy.copy(fleet) is fleet
    assert copy.deepcopy(fleet) is fleet


def test_a_fleet_shows_its_options_and_names_the_replica_by_host_and_pid() -> None:
    fleet = RedisFleet("rediss://cache:6379/0", claim_ttl=timedelta(seconds=3))
    assert (fleet.claim_ttl, fleet.on_unavailable) == (3.0, "skip")
    assert fleet.replica == f"{socket.gethostname()}:{os.getpid()}"
    assert RedisFleet("redis://h", on_unavailable="run").on_unavailable == "run"
    assert RedisFleet("redis://h").claim_ttl == 10.0


def test_key_is_for_every_cron_and_at_only() -> None:
    when = datetime.now(timezone.utc)
    assert at.every(1, noop, key="hb").key == "hb"
    assert at.cron("* * * * *", noop, key="c").key == "c"
    assert at.at(when, noop, key="once").key == "once"
    assert at.every(1, noop).key is None
    with pytest.raises(ValueError, match=r"after\(\)"):
        at.after(1, noop, key="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"on_file_change\(\)"):
        at.on_file_change(".", noop, key="x")  # type: ignore[arg-type]
    at.after(1, noop, key=None)
    with pytest.raises(ValueError, match="key must not be empty"):
        at.every(1, noop, key="")
    with pytest.raises(TypeError, match="key must be a str"):
        at.every(1, noop, key=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"0\.001"):
        at.every(0.0005, noop, key="fast")
    at.every(0.0005, noop)  # without a key, as fast as before


def test_a_runner_checks_its_fleet_and_its_keys() -> None:
    connection = FakeConnection()
    with pytest.raises(TypeError, match="fleet must be a RedisFleet or None, not str"):
        TriggerRunner([], connection, fleet="redis://localhost")  # type: ignore[arg-type]
    same_key = [at.every(1, noop, key="k"), at.cron("* * * * *", noop, key="k")]
    with pytest.raises(ValueError, match=r"triggers\[0\] and triggers\[1\].*'?\"?k"):
        TriggerRunner(same_key, connection)
    TriggerRunner([at.every(1, noop, key="k")], connection, fleet=None)


# --- ctx.scheduled_at, with or without a fleet ---


async def test_scheduled_at_is_the_due_instant_during_a_call_and_none_otherwise(
    connection: FakeConnection,
) -> None:
    seen: list[tuple[str, datetime | None]] = []
    contexts: list[TriggerContext] = []

    def keep(name: str) -> Callable[[TriggerContext], Coroutine[Any, Any, None]]:
        async def call(ctx: TriggerContext) -> None:
            seen.append((name, ctx.scheduled_at))
            contexts.append(ctx)

        return call

    when = datetime.now(timezone.utc) + timedelta(milliseconds=150)
    triggers: list[Any] = [
        at.every(0.05, keep("every")),
        at.after(0.1, keep("after")),
        at.at(when, keep("at")),
        keep("coroutine"),
    ]
    started = datetime.now(timezone.utc)
    async with TriggerRunner(triggers, connection):
        await wait_for(lambda: {"every", "after", "at"} <= {name for name, _ in seen})
    by_name = {name: due for name, due in reversed(seen)}
    assert by_name["coroutine"] is None
    assert by_name["at"] == when
    for name in ("every", "after"):
        due = by_name[name]
        assert due is not None
        assert due.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=1) < due < started + timedelta(seconds=5)
    assert all(ctx.scheduled_at is None for ctx in contexts), "None between calls"
    assert TriggerContext(connection).scheduled_at is None


# --- one tick, one replica ---


async def test_each_every_tick_runs_on_exactly_one_replica_on_the_keys_grid(
    redis_url: str,
) -> None:
    calls: Calls = defaultdict(list)
    interval_ns = 50_000_000
    async with AsyncExitStack() as stack:
        await started_replicas(
            stack, redis_url, lambda r: [at.every(0.05, recorder(calls, r), key="beat")]
        )
        await wait_for(lambda: len(calls) >= 20, timeout=10)
    ticks = sorted(calls)
    duplicates = {due: replicas for due, replicas in calls.items() if len(replicas) > 1}
    assert not duplicates
    assert all(nanos(b) - nanos(a) == interval_ns for a, b in zip(ticks, ticks[1:])), "no gap"
    phase = fnv1a_64("beat") % (interval_ns // 1000) * 1000
    assert {nanos(due) % interval_ns for due in ticks} == {phase}


async def test_the_first_fleet_call_comes_within_one_interval_of_start(redis_url: str) -> None:
    calls: Calls = defaultdict(list)
    async with AsyncExitStack() as stack:
        started = datetime.now(timezone.utc)
        await started_replicas(
            stack, redis_url, lambda r: [at.every(0.4, recorder(calls, r), key="slow")], ("a",)
        )
        await wait_for(lambda: calls, timeout=5)
    (first,) = sorted(calls)[:1]
    assert started < first <= started + timedelta(seconds=0.4)


async def test_cron_and_at_ticks_run_once_across_the_fleet(redis_url: str) -> None:
    calls: Calls = defaultdict(list)
    when = datetime.now(timezone.utc) + timedelta(milliseconds=300)
    async with AsyncExitStack() as stack:
        await started_replicas(
            stack,
            redis_url,
            lambda r: [
                at.cron("* * * * * *", recorder(calls, r), key="each-second"),
                at.at(when, recorder(calls, r), key="once"),
            ],
        )
        await wait_for(lambda: len(calls) >= 3, timeout=10)
    assert all(len(replicas) == 1 for replicas in calls.values()), dict(calls)
    assert when in calls
    seconds = sorted(due for due in calls if due != when)
    assert all(due.microsecond == 0 for due in seconds)
    assert all((b - a) == timedelta(seconds=1) for a, b in zip(seconds, seconds[1:]))


async def test_triggers_without_a_key_run_on_every_replica(redis_url: str) -> None:
    counts: Counter[str] = Counter()

    def count(replica: str) -> Callable[[TriggerContext], Coroutine[Any, Any, None]]:
        async def call(ctx: TriggerContext) -> None:
            counts[replica] += 1

        return call

    async with AsyncExitStack() as stack:
        await started_replicas(stack, redis_url, lambda r: [at.every(0.02, count(r))])
        await wait_for(lambda: len(counts) == 3 and min(counts.values()) >= 3)


async def test_a_stopping_replica_gives_back_its_unrun_claim(
    server: RedisServer, redis_url: str
) -> None:
    """The replica holding the next tick's claim stops before the tick: another
    replica takes the claim over and runs the tick."""
    calls: Calls = defaultdict(list)
    interval_ns = 10**9
    async with AsyncExitStack() as stack:
        runners = await started_replicas(
            stack, redis_url, lambda r: [at.every(1, recorder(calls, r), key="handoff")]
        )
        phase = fnv1a_64("handoff") % (interval_ns // 1000) * 1000
        now = nanos(datetime.now(timezone.utc))
        tick_ns = now - (now - phase) % interval_ns + interval_ns
        if tick_ns - now < 300_000_000:  # too close to watch it being claimed: the next
            tick_ns += interval_ns
        claim = f"agent_triggers:claim:handoff:{tick_ns // 1_000_000}"
        holder: list[str] = []

        def claimed() -> bool:
            value = server.get(claim)
            if value:
                holder.append(str(value))
            return bool(holder)

        await wait_for(claimed, timeout=3, what="the next tick's claim")
        await runners["abc".index(holder[0])].stop()
        due = EPOCH + timedelta(microseconds=tick_ns // 1000)
        await wait_for(lambda: due in calls, timeout=3, what="the given-back tick")
    (taker,) = calls[due]
    assert taker != holder[0]
    assert server.get(claim) == taker


# --- Redis unavailable ---


@contextmanager
def fleet_logs() -> Generator[list[logging.LogRecord], None, None]:
    with agent_trigger_logs() as records:
        logging.getLogger("agent_triggers").setLevel(logging.INFO)
        try:
            yield records
        finally:
            logging.getLogger("agent_triggers").setLevel(logging.NOTSET)


async def test_an_unreachable_redis_skips_ticks_with_one_warning() -> None:
    url = f"redis://:pw-9f3@127.0.0.1:{free_port()}/0"
    calls: Calls = defaultdict(list)
    with fleet_logs() as records:
        fleet = RedisFleet(url, replica="alone", claim_ttl=1)
        runner = TriggerRunner(
            [at.every(0.05, recorder(calls, "alone"), key="k")], FakeConnection(), fleet=fleet
        )
        async with runner:
            await wait_for(lambda: messages_at(records, logging.WARNING))
            await anyio.sleep(0.3)  # several more ticks, all skipped, none logged
            # The trigger's stats count them (docs/contract.md §8: skipped, fleet).
            await wait_for(lambda: runner.stats()[0].skipped >= 3)
    assert not calls
    (stats,) = runner.stats()
    assert (stats.calls, stats.failures) == (0, 0)
    (warning,) = messages_at(records, logging.WARNING)
    for word in ("unavailable", "skip", '"alone"'):
        assert word in warning
    assert all("pw-9f3" not in record.getMessage() for record in records)


async def test_on_unavailable_run_runs_the_ticks_here() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    calls: Calls = defaultdict(list)
    async with AsyncExitStack() as stack:
        await started_replicas(
            stack,
            url,
            lambda r: [at.every(0.05, recorder(calls, r), key="k")],
            ("a", "b"),
            claim_ttl=1,
            on_unavailable="run",
        )
        await wait_for(lambda: sum(len(r) == 2 for r in calls.values()) >= 3, timeout=10)


async def test_a_redis_down_at_start_is_used_once_it_is_up_without_a_restart() -> None:
    port = free_port()
    calls: Calls = defaultdict(list)
    with fleet_logs() as records:
        async with AsyncExitStack() as stack:
            await started_replicas(
                stack,
                f"redis://127.0.0.1:{port}/0",
                lambda r: [at.every(0.05, recorder(calls, r), key="k")],
                ("a", "b"),
                claim_ttl=1,
            )
            await wait_for(lambda: len(messages_at(records, logging.WARNING)) == 2)
            assert not calls
            server = RedisServer(port=port)
            try:
                await wait_for(lambda: len(calls) >= 5, timeout=10, what="ticks once Redis is up")
            finally:
                await stack.aclose()
                server.stop()
    assert all(len(replicas) == 1 for replicas in calls.values())
    assert len(messages_at(records, logging.WARNING)) == 2, "one per replica and outage"
    back = [m for m in messages_at(records, logging.INFO) if "reachable again" in m]
    assert len(back) == 2


async def test_a_fleet_runner_is_done_once_its_keyed_one_shot_has_fired(redis_url: str) -> None:
    calls: Calls = defaultdict(list)
    when = datetime.now(timezone.utc) + timedelta(milliseconds=100)
    async with AsyncExitStack() as stack:
        # The replicas that lost the claim wait half the ttl for a give-back.
        runners = await started_replicas(
            stack, redis_url, lambda r: [at.at(when, recorder(calls, r), key="once")], claim_ttl=1
        )
        await wait_for(lambda: not any(runner.is_running for runner in runners), timeout=5)
    assert [len(replicas) for replicas in calls.values()] == [1]


async def test_a_keyed_at_already_past_runs_once_at_start(redis_url: str) -> None:
    calls: Calls = defaultdict(list)
    when = datetime.now(timezone.utc) - timedelta(seconds=30)  # past half the claim ttl
    async with AsyncExitStack() as stack:
        runners = await started_replicas(
            stack,
            redis_url,
            lambda r: [at.at(when, recorder(calls, r), key="missed")],
            claim_ttl=1,
        )
        await wait_for(lambda: not any(runner.is_running for runner in runners), timeout=10)
    assert list(calls) == [when]
    assert len(calls[when]) == 1
