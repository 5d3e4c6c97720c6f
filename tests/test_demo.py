"""The demo (``python -m agent_triggers``) and the examples run, and exit cleanly."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_demo_rejects_a_bad_duration() -> None:
    done = run_demo("--seconds", "0")
    assert done.returncode == 2
    assert "--seconds must be positive" in done.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / example), run_name="__main__")
    assert "agent received" in capsys.readouterr().out
