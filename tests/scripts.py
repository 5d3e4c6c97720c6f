"""Real Python processes for the tests that need one (a clean exit, Ctrl-C):
a script run with `python -c`, told when it is ready, waited for with a bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

needs_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="sends SIGINT, which Windows processes do not receive"
)


def spawn(prelude: str, script: str) -> subprocess.Popen[str]:
    """Run `prelude` then `script` (dedented) in a new interpreter."""
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_ready(process: subprocess.Popen[str]) -> None:
    """Wait until the script prints ``ready`` (bounded: it prints it or exits)."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        _, err = process.communicate(timeout=30)
        pytest.fail(f"the script did not get ready: {line!r}\n{err}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str, float]:
    """Wait (bounded) for the process to exit: its code, the rest of its stdout,
    its stderr and how long it took."""
    began = time.monotonic()
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the process hung on exit\n{err}")
    return process.returncode, out, err, time.monotonic() - began
