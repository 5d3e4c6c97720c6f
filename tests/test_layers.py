"""The bindings' Rust modules keep their layers (ARCHITECTURE.md): api → run →
host → process, each using only those below it; the leaves (arguments,
delivery, gc, logging, python) use no layer; and no module imports another
that imports it back, however indirectly."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "rust" / "python" / "src"
LAYERS = {"api": 4, "run": 3, "host": 2, "process": 1}
LEAVES = {"arguments", "delivery", "gc", "logging", "python"}
# `crate::a::b` or `super::b` paths, in `use` lines and in code.
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")


def module_of(file: Path) -> tuple[str, ...]:
    """`api/runner.rs` -> ("api", "runner"); `api/mod.rs` -> ("api",)."""
    parts = file.relative_to(SOURCE).with_suffix("").parts
    return parts[:-1] if parts[-1] in {"mod", "lib"} else parts


def modules() -> dict[tuple[str, ...], Path]:
    return {module_of(file): file for file in SOURCE.rglob("*.rs")}


def imports(file: Path, known: dict[tuple[str, ...], Path]) -> set[tuple[str, ...]]:
    """The modules `file` names, each resolved to the longest known module path."""
    here = module_of(file)
    is_dir_module = file.name == "mod.rs"
    found: set[tuple[str, ...]] = set()
    text = "\n".join(line.split("//")[0] for line in file.read_text().splitlines())
    for root, rest in PATH.findall(text):
        names = tuple(rest.strip(":").split("::"))
        if root == "crate":
            path = names
        else:  # super: the parent of this module (of this directory, for mod.rs)
            base = here if is_dir_module else here[:-1]
            path = base[:-1] + names if is_dir_module else base + names
        while path and path not in known:
            path = path[:-1]
        if path and path != here:
            found.add(path)
    return found


def layer(module: tuple[str, ...]) -> str:
    return module[0]


def test_each_module_uses_only_layers_below_it_and_leaves() -> None:
    known = modules()
    wrong: list[str] = []
    for module, file in known.items():
        if not module:
            continue  # lib.rs registers the api
        for target in imports(file, known):
            source_layer, target_layer = layer(module), layer(target)
            if source_layer == target_layer:
                continue
            if target_layer in LEAVES:
                if source_layer in LEAVES or source_layer in LAYERS:
                    continue
            elif source_layer in LAYERS and LAYERS[target_layer] < LAYERS[source_layer]:
                continue
            wrong.append(f"{'/'.join(module)} uses {'/'.join(target)}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_module_cycle() -> None:
    known = modules()
    graph = {m: imports(f, known) for m, f in known.items() if m}
    # A parent module (a mod.rs) re-exporting its children is not a cycle:
    # only edges between modules that are not ancestor and descendant count.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if t[: len(module)] != module and module[: len(t)] != t}
    seen: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []

    def visit(module: tuple[str, ...]) -> None:
        seen[module] = 1
        stack.append(module)
        for target in graph.get(module, set()):
            if seen.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("module cycle: " + " -> ".join("/".join(m) for m in cycle))
            if target not in seen:
                visit(target)
        stack.pop()
        seen[module] = 2

    for module in graph:
        if module not in seen:
            visit(module)


def test_no_rust_file_is_over_450_lines() -> None:
    files = [*SOURCE.rglob("*.rs"), *(SOURCE.parent.parent / "core" / "src").rglob("*.rs")]
    long = [
        f"{f.relative_to(SOURCE.parent.parent)}: {n}"
        for f in files
        if (n := len(f.read_text().splitlines())) > 450
    ]
    assert not long, "split these:\n" + "\n".join(long)
