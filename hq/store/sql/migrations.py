"""Schema migrations, the discipline both backends keep.

A backend's schema is a numbered list of migrations, 1, 2, 3, ... Each is
applied once, in order, in its own transaction together with the record of
its version; a store opened for writing applies what is missing, so starting
twice (or two processes at once, each backend taking a lock) changes nothing
the second time. A database at a version this code does not know is refused
rather than misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # what it changes, in a few words
    statements: tuple[str, ...]  # DDL, run one after another


def pending(current: int, migrations: Sequence[Migration], where: str) -> list[Migration]:
    """The migrations a database at version `current` still needs, in order."""
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise RuntimeError("migrations must be numbered 1, 2, 3, ... without gaps")
    if current > len(migrations):
        raise RuntimeError(f"{where} has schema version {current}; this code knows up to "
                           f"{len(migrations)}: run the newer code, or restore a backup")
    return list(migrations[current:])
