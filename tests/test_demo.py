"""The demo (``python -m agent_triggers``) and the examples run, and exit cleanly."""

from __future__ import annotations

import contextlib
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from redis_server import RedisServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_triggers", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_demo_runs_and_exits_cleanly() -> None:
    done = run_demo("--seconds", "1.2")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert any("'fast #1'" in line for line in lines), done.stdout
    assert lines[-1].startswith("summary: "), done.stdout
    assert "messages delivered" in lines[-1]


def stats_rows(lines: list[str]) -> dict[str, list[str]]:
    """The last stats table the demo printed, by trigger: each row's columns."""
    header = max(i for i, line in enumerate(lines) if line.startswith("trigger "))
    rows: dict[str, list[str]] = {}
    for line in lines[header + 2 :]:
        if not line or line.startswith(("summary: ", "trigger ", "[")):
            break
        columns = line.split()
        rows[columns[0]] = columns
    return rows


def test_demo_operates_the_runner_and_ends_with_its_stats() -> None:
    done = run_demo("--seconds", "3", "--stats")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    for action in ("added 'reminder'", "paused 'fast'", "resumed 'fast'"):
        assert any(f"operator: {action}" in line for line in lines), done.stdout
    # --stats: a table every second while it runs, and one at the end.
    assert sum(line.startswith("trigger ") for line in lines) >= 3, done.stdout
    rows = stats_rows(lines)
    assert set(rows) == {"heartbeat", "fast", "clock", "files", "inbox", "reminder"}, rows
    kind, state, calls, failures, skipped = rows["fast"][1:6]
    assert (kind, failures) == ("every", "0")
    assert int(calls) >= 1
    assert int(skipped) >= 1, "paused for a second: its ticks were skipped"
    assert state == "idle"
    assert rows["reminder"][1:3] == ["after", "finished"]
    assert lines[-1].startswith("summary: ")


def test_demo_rejects_a_bad_duration() -> None:
    done = run_demo("--seconds", "0")
    assert done.returncode == 2
    assert "--seconds must be positive" in done.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(
    example: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.ExitStack() as stack:
        if example == "fleet_agent.py":  # needs a Redis: a real one of its own
            server = stack.enter_context(RedisServer())
            monkeypatch.setenv("REDIS_URL", server.url)
        runpy.run_path(str(EXAMPLES / example), run_name="__main__")
    assert "agent received" in capsys.readouterr().out


def test_the_fleet_example_runs_each_tick_once() -> None:
    with RedisServer() as server:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "fleet_agent.py")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "REDIS_URL": server.url},
        )
    assert done.returncode == 0, done.stderr
    ticks = [line.rsplit("tick due ", 1)[1] for line in done.stdout.splitlines() if "tick" in line]
    assert len(ticks) >= 5, done.stdout
    assert len(set(ticks)) == len(ticks), done.stdout
    after_a_left = done.stdout.split("replica-a stopped", 1)[1]
    assert "replica-a:" not in after_a_left
