"""Check the built distributions (run by `make test-wheel`, not collected by pytest).

The wheel must be one abi3 wheel for CPython >= 3.9, manylinux-tagged, carrying the
type stub and the py.typed marker next to the native module; the sdist must exist.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def main(dist: Path) -> int:
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    problems: list[str] = []
    if len(wheels) != 1:
        problems.append(f"expected one wheel in {dist}, found {[w.name for w in wheels]}")
    if len(sdists) != 1:
        problems.append(f"expected one sdist in {dist}, found {[s.name for s in sdists]}")
    for wheel in wheels:
        if "-cp39-abi3-" not in wheel.name:
            problems.append(f"{wheel.name} is not a cp39-abi3 wheel")
        if "manylinux" not in wheel.name:
            problems.append(f"{wheel.name} is not manylinux-tagged")
        names = set(zipfile.ZipFile(wheel).namelist())
        for wanted in ("agent_triggers/_core.pyi", "agent_triggers/py.typed"):
            if wanted not in names:
                problems.append(f"{wheel.name} lacks {wanted}")
        if not any(n.startswith("agent_triggers/_core.") and n.endswith(".so") for n in names):
            problems.append(f"{wheel.name} lacks the native module")
    for problem in problems:
        print(f"check_wheel: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_wheel: {wheels[0].name} and {sdists[0].name} are fine")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
