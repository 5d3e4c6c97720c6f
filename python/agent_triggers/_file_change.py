"""What an ``on_file_change`` callback receives: immutable records of changes."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FileChangeKind(str, enum.Enum):
    """What happened to a path. A rename is a ``DELETED`` and an ``ADDED``."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True)
class FileChange:
    """One change to one path. Immutable: assigning a field raises.

    ``kind`` is a ``FileChangeKind``; ``path`` the absolute path, as a ``str``.
    """

    kind: FileChangeKind
    path: str
