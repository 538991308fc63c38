"""`Db`: one connection inside a transaction or a read, as the shared SQL sees it.

Statements use qmark placeholders (`?`); a backend whose driver spells them
otherwise translates. The few things the engines say differently are methods
or attributes here rather than branches in the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Sequence[Any] | None: ...

    def fetchall(self) -> list[Sequence[Any]]: ...

    def fetchmany(self, size: int) -> list[Sequence[Any]]: ...

    def __iter__(self): ...


class Db(Protocol):
    # A subquery giving the text values of one JSON array parameter: a whole list of ids
    # as one parameter, however long (SQLite caps the number of parameters).
    json_text_values: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def lock(self, name: str) -> None:
        """Wait for, then hold until this transaction ends, the lock called `name`: what
        reads a head and appends after it (the audit chain) takes turns across processes."""

    def change_mark(self) -> int:
        """The mark this transaction leaves on the rows it changes, for `changes_since`."""
