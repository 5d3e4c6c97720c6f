"""docs/contract.md §1: the names `agent_triggers` exports, and which of them are native."""

from __future__ import annotations

import importlib.machinery

import pytest

import agent_triggers
import agent_triggers._core

PUBLIC_NAMES = [
    "TriggerRunner",
    "TriggerContext",
    "every",
    "Trigger",
    "TriggerDelivery",
    "trigger",
    "AlreadyStartedError",
    "RedisFleet",
    "TriggerStats",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_name_is_exported_and_listed_in_all(name: str) -> None:
    assert name in agent_triggers.__all__
    assert hasattr(agent_triggers, name)


def test_every_name_in_all_is_importable() -> None:
    for name in agent_triggers.__all__:
        assert hasattr(agent_triggers, name), name


def test_core_is_the_native_extension_module() -> None:
    core_file = agent_triggers._core.__file__
    assert core_file is not None
    assert core_file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@pytest.mark.parametrize("name", ["TriggerRunner", "TriggerContext", "every"])
def test_native_names_are_the_core_objects_not_python_copies(name: str) -> None:
    assert getattr(agent_triggers, name) is getattr(agent_triggers._core, name)


def test_already_started_error_is_a_runtime_error() -> None:
    assert isinstance(agent_triggers.AlreadyStartedError, type)
    assert issubclass(agent_triggers.AlreadyStartedError, RuntimeError)


def test_trigger_delivery_has_wait_idle_and_send_immediately() -> None:
    delivery = agent_triggers.TriggerDelivery
    assert isinstance(delivery.WAIT_IDLE, delivery)
    assert isinstance(delivery.SEND_IMMEDIATELY, delivery)
    members: list[object] = [delivery.WAIT_IDLE, delivery.SEND_IMMEDIATELY]
    assert members[0] != members[1]


def test_trigger_is_a_class() -> None:
    assert isinstance(agent_triggers.Trigger, type)


def test_trigger_decorator_is_callable() -> None:
    assert callable(agent_triggers.trigger)


def test_the_version_has_one_source() -> None:
    """The package's __version__ is the installed distribution's (both from Cargo.toml)."""
    from importlib.metadata import version

    assert agent_triggers.__version__ == version("agent-triggers")
