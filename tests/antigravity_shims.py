"""Point Antigravity's trigger modules at this package, as a user switching over does.

``install()`` replaces ``google.antigravity.triggers.triggers``, ``.helpers`` and
``.trigger_runner`` (in ``sys.modules`` and as attributes of the package) by
modules holding this package's objects under the same names, and re-exports
them from ``google.antigravity.triggers`` itself. Code that imports those
modules afterwards — the SDK's own trigger tests, run unchanged by
``test_antigravity_peer.py`` — runs against ``agent_triggers``.
"""

from __future__ import annotations

import sys
import types

import agent_triggers

# Antigravity's module -> the names it defines that this package provides.
REPLACED: dict[str, tuple[str, ...]] = {
    "triggers": ("TriggerContext", "trigger", "Trigger", "FileChange", "FileChangeKind"),
    "helpers": ("every", "on_file_change"),
    "trigger_runner": ("TriggerRunner",),
}


def install() -> None:
    import google.antigravity.triggers as package  # pyright: ignore[reportMissingTypeStubs]

    for module_name, names in REPLACED.items():
        module = types.ModuleType(f"{package.__name__}.{module_name}")
        module.__doc__ = f"agent_triggers standing in for Antigravity's {module_name}"
        for name in names:
            setattr(module, name, getattr(agent_triggers, name))
            if hasattr(package, name):
                setattr(package, name, getattr(agent_triggers, name))
        sys.modules[module.__name__] = module
        setattr(package, module_name, module)
