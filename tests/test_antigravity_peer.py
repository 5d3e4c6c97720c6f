"""Antigravity's own trigger tests, run unchanged against this package.

google-antigravity ships the tests of its ``triggers`` package in its wheel.
Each run copies them from the installed SDK (so a new SDK version brings its
new tests along), points the SDK's ``triggers``, ``helpers`` and
``trigger_runner`` modules at ``agent_triggers`` (``antigravity_shims.py``) and
runs them in a fresh interpreter: every one must pass, except the few listed
in ``NOT_THE_CONTRACT``, which test how Antigravity implements a feature rather
than what it promises.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import antigravity_sdk_missing

if reason := antigravity_sdk_missing():
    pytest.skip(reason, allow_module_level=True)

TESTS_DIR = Path(__file__).resolve().parent

# Test id -> why it does not apply to a drop-in with its own implementation.
NOT_THE_CONTRACT = {
    "helpers_test.py::OnFileChangeTest::test_on_file_change_import_error": (
        "Antigravity's on_file_change needs the optional watchfiles package and "
        "raises ImportError without it; ours watches in Rust (notify) and needs none"
    ),
    "helpers_test.py::OnFileChangeTest::test_on_file_change_success": (
        "feeds a fake watchfiles.awatch through sys.modules; ours does not use watchfiles"
    ),
    "triggers_test.py::FileChangeTest::test_file_change_is_immutable": (
        "expects pydantic.ValidationError, the error of Antigravity's pydantic model; "
        "ours is a frozen dataclass (assignment raises FrozenInstanceError), and "
        "test_on_file_change.py checks that"
    ),
}


def sdk_trigger_tests() -> list[Path]:
    spec = importlib.util.find_spec("google.antigravity.triggers")
    assert spec is not None, "google-antigravity is not installed (pip install -e '.[dev]')"
    assert spec.submodule_search_locations, spec
    tests = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*_test.py"))
    assert tests, "the installed google-antigravity ships no trigger tests"
    return tests


def test_antigravity_trigger_tests_pass_against_agent_triggers(tmp_path: Path) -> None:
    copied = [Path(shutil.copy(test, tmp_path)) for test in sdk_trigger_tests()]
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import agent_triggers
            import antigravity_shims

            antigravity_shims.install()
            from google.antigravity.triggers import trigger_runner

            assert trigger_runner.TriggerRunner is agent_triggers.TriggerRunner
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 60\nfilterwarnings = error\n")
    report = tmp_path / "report.xml"
    deselect = [arg for test_id in NOT_THE_CONTRACT for arg in ("--deselect", test_id)]
    run = _pytest(tmp_path, f"--junitxml={report}", *deselect, *(test.name for test in copied))
    assert run.returncode == 0, run.stdout + run.stderr
    outcomes = _outcomes(report)
    assert outcomes, run.stdout
    assert {test for test, outcome in outcomes.items() if outcome != "passed"} == set()
    # The runner's tests (the ones the launch semantics of start() answer) ran.
    assert "trigger_runner_test.py::TriggerRunnerTest::test_stop_cancels_all_triggers" in outcomes
    assert (
        "trigger_runner_test.py::TriggerRunnerTest::"
        "test_exception_in_trigger_does_not_crash_others" in outcomes
    )
    # What is left out still exists in the SDK's tests: left out on purpose.
    collected = _collected(tmp_path, copied)
    assert set(NOT_THE_CONTRACT) <= collected
    assert collected - set(NOT_THE_CONTRACT) == set(outcomes)


def _pytest(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh interpreter, in ``tmp_path``, with the shims importable.

    The SDK's tests are ``unittest`` cases (``IsolatedAsyncioTestCase``), run
    without pytest-asyncio and without this suite's configuration.
    """
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path)),
            *arguments,
        ],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(TESTS_DIR)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _outcomes(report: Path) -> dict[str, str]:
    """Test id (``file::Class::test``) -> ``passed``, ``failed``, ``error`` or ``skipped``."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        module, _, cls = case.get("classname", "").rpartition(".")
        test_id = f"{module}.py::{cls}::{case.get('name')}"
        failed = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[test_id] = {"failure": "failed"}.get(failed[0], failed[0]) if failed else "passed"
    return outcomes


def _collected(tmp_path: Path, tests: list[Path]) -> set[str]:
    listed = _pytest(tmp_path, "--collect-only", "-q", *(test.name for test in tests))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {line for line in listed.stdout.splitlines() if "::" in line}
