"""A fleet as it runs in production: several replica processes
(`tests/fleet_replica.py`) against a real `redis-server` (`tests/redis_server.py`),
docs/contract.md §9.

Each replica appends one line per call to a shared file: who ran which tick of
which key. From those lines the tests check the fleet's promise — each tick of a
keyed trigger runs on exactly one replica, on the key's epoch grid — in steady
state, when a replica stops (`SIGTERM`: it gives back its claim), is killed
(`SIGKILL`) or is suspended past its claim's ttl (`SIGSTOP`), when Redis restarts
empty, and when it cannot be reached at all.

Timing is only checked with generous bounds: the tests wait for a replica's
`ready` line and for ticks to show up (bounded polls); the checks count ticks over
a window in which every replica was running, never how late a call was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import pytest
from redis_server import RedisServer, free_port

T = TypeVar("T")

REPLICA_SCRIPT = Path(__file__).with_name("fleet_replica.py")
NS = 1_000_000_000
MS = 1_000_000
#: How long a replica may take to start (import, runner start) on a loaded machine.
READY_WITHIN = 30.0
#: How long a replica may take to stop after SIGTERM (it gives back its claims).
EXIT_WITHIN = 15.0
#: Ticks strictly within this much of the window's ends are not checked: the
#: replicas are still starting, or stopping, around them.
MARGIN_NS = 300 * MS
CLAIM_PREFIX = "agent_triggers:claim"


@dataclass(frozen=True)
class Tick:
    """One call, as a replica recorded it."""

    replica: str
    key: str
    due_ns: int
    """`ctx.scheduled_at`, in nanoseconds since the Unix epoch."""


def phases(ticks: Iterable[Tick], interval_ns: int) -> dict[str, int]:
    """Each key's grid, `phase + k * interval` after the epoch, as the ticks show it:
    the phase of each key (the test fails if a key's ticks are on several grids)."""
    offsets: dict[str, set[int]] = {}
    for tick in ticks:
        offsets.setdefault(tick.key, set()).add(tick.due_ns % interval_ns)
    for key, found in offsets.items():
        assert len(found) == 1, f"the ticks of {key} are not on one grid: offsets {found}"
    return {key: found.pop() for key, found in offsets.items()}


def grid_between(phase: int, interval_ns: int, start_ns: int, end_ns: int) -> list[int]:
    """The ticks of the grid `phase + k * interval` strictly between `start_ns` and
    `end_ns`."""
    tick = phase + ((start_ns - phase) // interval_ns + 1) * interval_ns
    ticks: list[int] = []
    while tick < end_ns:
        ticks.append(tick)
        tick += interval_ns
    return ticks


def claim_key(key: str, due_ns: int) -> str:
    """The claim of `key`'s tick due at `due_ns`: named by its millisecond."""
    return f"{CLAIM_PREFIX}:{key}:{due_ns // MS}"


def poll(
    produce: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    every: float = 0.01,
) -> T:
    """Call `produce` every `every` s until it returns something truthy, and return
    that; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(every)


def duplicates(ticks: Iterable[Tick]) -> dict[tuple[str, int], int]:
    """The (key, due) pairs run more than once, with how many times."""
    counts = Counter((tick.key, tick.due_ns) for tick in ticks)
    return {pair: count for pair, count in counts.items() if count > 1}


def missing(
    ticks: Iterable[Tick], keys: Iterable[str], interval_ns: int, start_ns: int, end_ns: int
) -> list[tuple[str, int]]:
    """The ticks of each key's grid strictly between `start_ns` and `end_ns` that
    nobody ran (each key must have run some tick, so its grid is known)."""
    ticks = list(ticks)
    grids = phases(ticks, interval_ns)
    ran = {(tick.key, tick.due_ns) for tick in ticks}
    gaps: list[tuple[str, int]] = []
    for key in keys:
        assert key in grids, f"{key} never ran"
        for due in grid_between(grids[key], interval_ns, start_ns, end_ns):
            if (key, due) not in ran:
                gaps.append((key, due))
    return gaps


def shown_ticks(ticks: Iterable[Tick], around_ns: int | None = None) -> str:
    """Ticks for an assertion message, times relative to `around_ns` in ms."""
    lines: list[str] = []
    for tick in sorted(ticks, key=lambda t: (t.due_ns, t.key)):
        when = tick.due_ns if around_ns is None else (tick.due_ns - around_ns) / MS
        lines.append(f"  {tick.replica} {tick.key} {when}")
    return "\n".join(lines)


class Replica:
    """One `fleet_replica.py` process: its `ready` line is read on a thread (a
    replica that dies never hangs the test), its stderr goes to a file."""

    def __init__(self, name: str, arguments: list[str], stderr_path: Path) -> None:
        self.name = name
        self.stderr_path = stderr_path
        self._stderr: IO[bytes] = open(stderr_path, "wb")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, str(REPLICA_SCRIPT), *arguments, "--replica", name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.ready_ns: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            if line.strip() == b"ready" and not self._ready.is_set():
                self.ready_ns = time.time_ns()
                self._ready.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = READY_WITHIN) -> int:
        """When it printed `ready` (wall clock, ns); fail the test if it does not."""
        if not self._ready.wait(timeout):
            status = self.process.poll()
            pytest.fail(
                f"replica {self.name} not ready within {timeout} s (exit status {status}); "
                f"stderr:\n{self.stderr()}"
            )
        assert self.ready_ns is not None
        return self.ready_ns

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def wait(self, timeout: float = EXIT_WITHIN) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"replica {self.name} did not exit within {timeout} s")

    def stderr(self) -> str:
        """What it has written to stderr so far (its WARNINGs: Python's last-resort
        logging handler)."""
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill it if it still runs, and release everything it holds."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # if it was stopped
            self.process.kill()
        self.process.wait()
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


class Fleet:
    """N replicas of the same keyed triggers, writing to one file."""

    def __init__(self, replicas: list[Replica], out: Path) -> None:
        self.replicas = replicas
        self.out = out

    def by_name(self, name: str) -> Replica:
        return next(replica for replica in self.replicas if replica.name == name)

    def wait_ready(self) -> int:
        """When the last replica printed `ready` (wall clock, ns)."""
        return max(replica.wait_ready() for replica in self.replicas)

    def ticks(self) -> list[Tick]:
        """Every call recorded so far (each line is written whole, by one `write`)."""
        try:
            text = self.out.read_text()
        except FileNotFoundError:
            return []
        ticks: list[Tick] = []
        for line in text.splitlines():
            replica, key, due = line.split()
            ticks.append(Tick(replica, key, int(due)))
        return ticks

    def stop(self, replicas: Iterable[Replica] | None = None) -> int:
        """SIGTERM to each replica (all by default); when it was sent (ns). Each
        must exit 0 within `EXIT_WITHIN`."""
        chosen = list(self.replicas if replicas is None else replicas)
        sent = time.time_ns()
        for replica in chosen:
            replica.signal(signal.SIGTERM)
        for replica in chosen:
            status = replica.wait()
            assert status == 0, f"replica {replica.name} exited {status}:\n{replica.stderr()}"
        return sent


@contextmanager
def fleet_of(
    tmp_path: Path,
    url: str,
    *,
    replicas: int = 3,
    keys: int,
    interval: float,
    claim_ttl: float | None = None,
    on_unavailable: str = "skip",
) -> Generator[Fleet, None, None]:
    """`replicas` replica processes against `url`; all killed on the way out."""
    out = tmp_path / "ticks.txt"
    arguments = [url, str(out), "--keys", str(keys), "--interval", str(interval)]
    arguments += ["--on-unavailable", on_unavailable]
    if claim_ttl is not None:
        arguments += ["--claim-ttl", str(claim_ttl)]
    started: list[Replica] = []
    try:
        for index in range(replicas):
            name = f"r{index}"
            started.append(Replica(name, arguments, tmp_path / f"{name}.stderr"))
        yield Fleet(started, out)
    finally:
        for replica in started:
            replica.close()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A real redis-server of this test's own, stopped at the end."""
    with RedisServer() as redis_server:
        yield redis_server


def settled(fleet: Fleet) -> int:
    """Wait until every replica is ready and two ticks ran after that; when the
    last replica became ready."""
    all_ready = fleet.wait_ready()
    poll(
        lambda: len([t for t in fleet.ticks() if t.due_ns > all_ready]) >= 2,
        timeout=10,
        what="two ticks after all replicas were ready",
    )
    return all_ready


def next_claim_holder(
    fleet: Fleet, server: RedisServer, interval_ns: int, after_ns: int
) -> tuple[int, Replica]:
    """Wait for the claim of k0's next tick (after the last one run, and after
    `after_ns`) to be made; its due instant and the replica that holds it.

    The claim is made about 100 ms before the tick: polled every 2 ms, it is seen
    well before the tick is due.
    """
    last = poll(
        lambda: max((t.due_ns for t in fleet.ticks() if t.due_ns > after_ns), default=None),
        timeout=10,
        what="a tick of k0 to run",
    )
    due = last + interval_ns
    # One whose claim is yet to be made (about 100 ms ahead): its holder is then
    # found well before it is due.
    while due - time.time_ns() < 150 * MS:
        due += interval_ns
    holder = poll(
        lambda: server.get(claim_key("k0", due)),
        timeout=10,
        what=f"the claim {claim_key('k0', due)}",
        every=0.002,
    )
    assert isinstance(holder, str)
    return due, fleet.by_name(holder)


def test_each_tick_runs_on_exactly_one_replica(tmp_path: Path, server: RedisServer) -> None:
    """Steady state: 3 replicas, 4 keys every 0.1 s. Over the time all three run,
    every tick of every key runs once — no duplicate, no miss — on the key's grid,
    and not all on the same replica."""
    interval_ns = NS // 10
    keys = [f"k{i}" for i in range(4)]
    with fleet_of(tmp_path, server.url, keys=len(keys), interval=0.1) as fleet:
        all_ready = fleet.wait_ready()
        time.sleep(3.0)  # the common running time under test
        stopped = fleet.stop()
        ticks = fleet.ticks()

    start, end = all_ready + MARGIN_NS, stopped - MARGIN_NS
    window = [tick for tick in ticks if start < tick.due_ns < end]
    assert len(window) >= len(keys) * 20, f"too few ticks in the window:\n{shown_ticks(ticks)}"
    assert duplicates(ticks) == {}
    assert missing(ticks, keys, interval_ns, start, end) == []
    # Every key's ticks on one grid, whichever replica ran them.
    assert set(phases(ticks, interval_ns)) == set(keys)
    ran_by = Counter(tick.replica for tick in window)
    assert len(ran_by) > 1, f"every tick ran on one replica: {ran_by}"


@pytest.mark.timeout(90)
def test_a_replica_killed_loses_at_most_its_claimed_tick(
    tmp_path: Path, server: RedisServer
) -> None:
    """SIGKILL to the replica holding the next claim: that tick runs on nobody
    (or on the killed replica, had it run it just before); the survivors run
    every other tick, once."""
    interval_ns = NS
    with fleet_of(tmp_path, server.url, keys=1, interval=1.0, claim_ttl=3.0) as fleet:
        all_ready = settled(fleet)
        lost, victim = next_claim_holder(fleet, server, interval_ns, all_ready)
        victim.signal(signal.SIGKILL)
        killed = time.time_ns()
        assert victim.wait() == -signal.SIGKILL
        survivors = [replica for replica in fleet.replicas if replica is not victim]
        following = [lost + interval_ns, lost + 2 * interval_ns]
        poll(
            lambda: {t.due_ns for t in fleet.ticks()} >= set(following),
            timeout=15,
            what="the two ticks after the lost one",
        )
        stopped = fleet.stop(survivors)
        ticks = fleet.ticks()

    context = f"killed {victim.name} holding {lost}:\n{shown_ticks(ticks, lost)}"
    assert duplicates(ticks) == {}, context
    of_lost = [tick for tick in ticks if tick.due_ns == lost]
    assert all(tick.replica == victim.name for tick in of_lost), context
    assert all(tick.due_ns <= lost for tick in ticks if tick.replica == victim.name), context
    for due in following:
        ran = [tick for tick in ticks if tick.due_ns == due]
        assert len(ran) == 1, context
        assert ran[0].replica != victim.name, context
    assert killed < following[0]
    gaps = missing(ticks, ["k0"], interval_ns, all_ready + MARGIN_NS, stopped - MARGIN_NS)
    assert set(gaps) <= {("k0", lost)}, context


#: How long after its claim is seen in Redis its holder is suspended: time for it
#: to read the answer to its claim (its tick is still about 100 ms ahead).
SETTLE = 0.03


def suspension_warnings(replica: Replica) -> list[str]:
    """The WARNINGs of a replica resumed past its claim's tick: that the tick is
    skipped — or, if it was suspended before it could read its claim's answer,
    that Redis did not answer in time (then it skips the tick as unclaimed)."""
    return [
        line
        for line in replica.stderr().splitlines()
        if ("is skipped" in line and '"k0"' in line) or "is unavailable (timed out)" in line
    ]


@pytest.mark.timeout(90)
def test_a_replica_suspended_past_its_claim_skips_that_tick(
    tmp_path: Path, server: RedisServer
) -> None:
    """SIGSTOP to the replica holding the next claim, for longer than the claim
    ttl, then SIGCONT: nobody runs that tick (its holder finds it too late, with a
    WARNING; nobody else can claim it) and every other tick runs once.

    Then the two others stop (SIGTERM, one at a time, each while the next claim is
    fresh: one holding it gives it back to the others); the resumed replica, left
    alone, runs every tick; all three exit 0.
    """
    interval_ns = NS // 2
    with fleet_of(tmp_path, server.url, keys=1, interval=0.5, claim_ttl=1.0) as fleet:
        all_ready = settled(fleet)
        for _ in range(5):
            skipped, sleeper = next_claim_holder(fleet, server, interval_ns, all_ready)
            # Let it read its claim's answer (seen here as the claim is made; its
            # tick is still about 100 ms ahead). See `suspension_warnings`.
            time.sleep(SETTLE)
            sleeper.signal(signal.SIGSTOP)
            if time.time_ns() < skipped:
                break
            # Stopped too late (a loaded machine): it may have run the tick. Again.
            sleeper.signal(signal.SIGCONT)
        else:
            pytest.fail("could not suspend a claim's holder before its tick was due")
        time.sleep(2.5)  # suspended for longer than the claim ttl (1 s)
        sleeper.signal(signal.SIGCONT)
        poll(
            lambda: suspension_warnings(sleeper),
            timeout=10,
            what=f"{sleeper.name} to report its tick skipped",
        )

        # Stop the two others, one at a time, each just after the next claim is
        # made (no call under way then): one holding that claim gives it back.
        given_back: dict[int, str] = {}
        for other in [replica for replica in fleet.replicas if replica is not sleeper]:
            due, holder = next_claim_holder(fleet, server, interval_ns, all_ready)
            other.signal(signal.SIGTERM)
            assert other.wait() == 0, other.stderr()
            if holder is other:
                given_back[due] = other.name
        alone = time.time_ns()
        poll(
            lambda: len([t for t in fleet.ticks() if t.due_ns > alone]) >= 2,
            timeout=10,
            what=f"{sleeper.name}, alone, to run two ticks",
        )
        stopped = fleet.stop([sleeper])
        ticks = fleet.ticks()

    context = f"suspended {sleeper.name} holding {skipped}:\n{shown_ticks(ticks, skipped)}"
    assert duplicates(ticks) == {}, context
    assert [tick for tick in ticks if tick.due_ns == skipped] == [], context
    gaps = missing(ticks, ["k0"], interval_ns, all_ready + MARGIN_NS, stopped - MARGIN_NS)
    assert gaps == [("k0", skipped)], context
    assert all(t.replica == sleeper.name for t in ticks if t.due_ns > alone), context
    # Its one WARNING: that tick skipped (or, suspended before it had read its
    # claim's answer, Redis "unavailable" for that claim: skipped all the same).
    assert suspension_warnings(sleeper) == sleeper.stderr().splitlines(), sleeper.stderr()
    assert len(suspension_warnings(sleeper)) == 1, sleeper.stderr()
    for due, giver in given_back.items():
        ran = [tick.replica for tick in ticks if tick.due_ns == due]
        assert len(ran) == 1, f"given back by {giver}: {due}\n{context}"
        assert ran[0] != giver, f"given back by {giver}: {due}\n{context}"


@pytest.mark.timeout(90)
def test_a_replica_stopped_gives_back_its_claim(tmp_path: Path, server: RedisServer) -> None:
    """SIGTERM to the replica holding the next claim (made, its tick not yet run):
    it gives the claim back, exits 0, and another replica takes the claim over and
    runs that tick; no tick is missed or run twice."""
    interval_ns = NS // 2
    with fleet_of(tmp_path, server.url, keys=1, interval=0.5, claim_ttl=2.0) as fleet:
        all_ready = settled(fleet)
        given_back, giver = next_claim_holder(fleet, server, interval_ns, all_ready)
        giver.signal(signal.SIGTERM)
        signalled = time.time_ns()
        assert giver.wait() == 0, giver.stderr()
        taker = poll(
            lambda: next((t.replica for t in fleet.ticks() if t.due_ns == given_back), None),
            timeout=10,
            what=f"the tick {giver.name} gave back to run",
        )
        claim = server.get(claim_key("k0", given_back))
        poll(
            lambda: len([t for t in fleet.ticks() if t.due_ns > given_back]) >= 2,
            timeout=10,
            what="two ticks after the one given back",
        )
        stopped = fleet.stop([replica for replica in fleet.replicas if replica is not giver])
        ticks = fleet.ticks()

    context = f"{giver.name} gave back {given_back}:\n{shown_ticks(ticks, given_back)}"
    assert signalled < given_back, "SIGTERM sent too late to test the give-back"
    assert [t.replica for t in ticks if t.due_ns == given_back] == [taker], context
    assert taker != giver.name, context
    assert all(t.due_ns < given_back for t in ticks if t.replica == giver.name), context
    # The claim names the replica that took it over (it expires by itself, in 2 s).
    assert claim == taker, claim
    assert duplicates(ticks) == {}, context
    assert missing(ticks, ["k0"], interval_ns, all_ready + MARGIN_NS, stopped - MARGIN_NS) == []


@pytest.fixture
def guarded_server() -> Iterator[RedisServer]:
    """A real redis-server of this test's own, with a password (`s3cret`)."""
    with RedisServer(password="s3cret") as redis_server:
        yield redis_server


@pytest.mark.timeout(90)
def test_a_redis_restart_loses_ticks_only_around_it(
    tmp_path: Path, guarded_server: RedisServer
) -> None:
    """Redis (with a password) restarted empty mid-run: no tick runs twice; the
    replicas (not restarted) reconnect by themselves and every key ticks again;
    the ticks missed lie around the restart; no replica shows the password."""
    server = guarded_server
    interval_ns = NS // 5
    keys = ["k0", "k1"]
    with fleet_of(tmp_path, server.url, keys=len(keys), interval=0.2) as fleet:
        all_ready = fleet.wait_ready()
        poll(
            lambda: len([t for t in fleet.ticks() if t.due_ns > all_ready + NS]) >= 2,
            timeout=15,
            what="ticks a second after all replicas were ready",
        )
        restart_began = time.time_ns()
        server.restart()
        restarted = time.time_ns()
        poll(
            lambda: {t.key for t in fleet.ticks() if t.due_ns > restarted + NS} == set(keys),
            timeout=20,
            what="every key to tick again a second after the restart",
        )
        time.sleep(1.0)  # steady running after the recovery
        stopped = fleet.stop()
        ticks = fleet.ticks()
        stderrs = {replica.name: replica.stderr() for replica in fleet.replicas}
        warned = {replica.name: outage_warnings(replica) for replica in fleet.replicas}

    context = f"restart at 0..{(restarted - restart_began) / MS} ms:\n"
    context += shown_ticks(ticks, restart_began)
    assert duplicates(ticks) == {}, context
    gaps = missing(ticks, keys, interval_ns, all_ready + MARGIN_NS, stopped - MARGIN_NS)
    outside = [
        (key, (due - restart_began) / MS)
        for key, due in gaps
        if not restart_began - NS // 2 <= due <= restarted + 2 * NS
    ]
    assert outside == [], context
    for key in keys:
        after = [t for t in ticks if t.key == key and t.due_ns > restarted + NS]
        assert after, context
    for name, text in stderrs.items():
        assert "s3cret" not in text, f"{name} showed the password:\n{text}"
        assert len(warned[name]) <= 1, f"more than one WARNING for one outage:\n{text}"


def outage_warnings(replica: Replica) -> list[str]:
    """The lines of its stderr about Redis being unavailable."""
    return [line for line in replica.stderr().splitlines() if "unavailable" in line]


def wait_for_outage_warning(replica: Replica) -> None:
    poll(
        lambda: outage_warnings(replica),
        timeout=10,
        what=f"{replica.name}'s WARNING that Redis is unavailable",
    )


@pytest.mark.timeout(90)
def test_redis_unreachable_skip_runs_nothing_and_warns_once(tmp_path: Path) -> None:
    """No server at the URL, `on_unavailable="skip"`: no tick runs anywhere; each
    replica logs one WARNING for the outage, without the URL's password."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with fleet_of(tmp_path, url, keys=2, interval=0.1, on_unavailable="skip") as fleet:
        fleet.wait_ready()
        for replica in fleet.replicas:
            wait_for_outage_warning(replica)
        time.sleep(1.5)  # many ticks' time for a stray call or a second WARNING (a negative)
        fleet.stop()
        ticks = fleet.ticks()
        stderrs = {replica.name: replica.stderr() for replica in fleet.replicas}
        warned = {replica.name: outage_warnings(replica) for replica in fleet.replicas}

    assert ticks == []
    for name, lines in warned.items():
        assert len(lines) == 1, stderrs[name]
        assert "skip" in lines[0], lines[0]
    for name, text in stderrs.items():
        assert "s3cret" not in text, f"{name} showed the password:\n{text}"


@pytest.mark.timeout(90)
def test_redis_unreachable_run_runs_every_tick_on_every_replica(tmp_path: Path) -> None:
    """No server at the URL, `on_unavailable="run"`: every replica runs every
    tick, on the key's grid; one WARNING each, without the URL's password."""
    interval_ns = NS // 5
    keys = ["k0", "k1"]
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with fleet_of(tmp_path, url, keys=len(keys), interval=0.2, on_unavailable="run") as fleet:
        all_ready = fleet.wait_ready()
        time.sleep(2.0)  # the common running time under test
        stopped = fleet.stop()
        ticks = fleet.ticks()
        stderrs = {replica.name: replica.stderr() for replica in fleet.replicas}
        warned = {replica.name: outage_warnings(replica) for replica in fleet.replicas}

    start, end = all_ready + MARGIN_NS, stopped - MARGIN_NS
    assert set(phases(ticks, interval_ns)) == set(keys)  # one grid per key, in every replica
    for name in stderrs:
        own = [tick for tick in ticks if tick.replica == name]
        assert duplicates(own) == {}, shown_ticks(own)
        assert missing(own, keys, interval_ns, start, end) == [], shown_ticks(own)
    window = Counter((t.key, t.due_ns) for t in ticks if start < t.due_ns < end)
    assert len(window) >= len(keys) * 5
    assert set(window.values()) == {3}
    for name, lines in warned.items():
        assert len(lines) == 1, stderrs[name]
        assert "run" in lines[0], lines[0]
    for name, text in stderrs.items():
        assert "s3cret" not in text, f"{name} showed the password:\n{text}"
