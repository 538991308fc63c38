"""HQ's embedded store backend: one SQLite file in WAL mode (the interface is
hq/store/interface.py; what both backends share, hq/store/sql/).

Writes go through one writer connection behind a lock. `commit_ingest_many`
writes everything a group of ingested messages changes in ONE transaction,
including the (node, seq) that marks each batch as seen: after a crash a
batch is either wholly there and known as seen, or absent and still to be
ingested when the edge sends it again. Each reading thread gets its own
read-only connection; WAL lets it read a consistent snapshot while the writer
commits.

Durability: `synchronous=FULL` by default. A kill -9 loses nothing in WAL
mode with NORMAL either, but a power cut could then drop the last commits,
and those batches were already acknowledged to the broker, so no edge would
send them again. FULL costs one fsync per commit, shared by a whole group.

Beside this file: the write path (write.py) and the schema (schema.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import sqlite_utils

from hq.store.records import IngestBatch, StoreStats
from hq.store.sql.migrations import pending
from hq.store.sql.store import SqlStore
from hq.store.sqlite.schema import MIGRATIONS, TABLES, migrate, open_writer, schema_version
from hq.store.sqlite.write import unseen, write_batches


class SqliteDb:
    """A sqlite3 connection as the shared SQL's `Db`."""

    json_text_values = "SELECT value FROM json_each(?)"

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._mark: int | None = None

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self.conn.executemany(sql, rows)

    def lock(self, name: str) -> None:
        """Nothing to take: BEGIN IMMEDIATE holds the file's one write lock already."""

    def change_mark(self) -> int:
        if self._mark is None:
            self._mark = self.conn.execute("UPDATE store_clock SET change_seq = change_seq + 1 "
                                           "RETURNING change_seq").fetchone()[0]  # fmt: skip
        return self._mark


class SqliteStore(SqlStore):
    """The embedded backend: one SQLite file in WAL mode.

    `read_only=True` opens an existing file without changing it (no migration,
    no writer), which is what audit-verify needs: a check must not repair what
    it checks.
    """

    def __init__(self, path: str | Path, synchronous: Literal["FULL", "NORMAL"] = "FULL",
                 read_only: bool = False):  # fmt: skip
        self.path = Path(path).resolve()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer: sqlite_utils.Database | None = None
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no database at {self.path}")
        if read_only:
            if pending(schema_version(self._reader()), MIGRATIONS, str(self.path)):
                raise RuntimeError(f"{self.path} predates this code's schema: open it for "
                                   "writing once (python -m hq run) to migrate it")  # fmt: skip
        else:
            self._writer = open_writer(self.path, synchronous)
            migrate(self._writer)

    def close(self) -> None:
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        if self._writer is not None:
            with self._write_lock:
                self._writer.conn.close()

    def _write_ingest(self, db: SqliteDb, batches: Sequence[IngestBatch]) -> list[bool]:
        fresh = unseen(db.conn, batches)
        new = [b for b, is_new in zip(batches, fresh, strict=True) if is_new]
        if new:
            write_batches(db.conn, new, db.change_mark())
        return fresh

    def _changes_window(self, db: SqliteDb, cursor: int) -> tuple[str, int, int]:
        head = db.execute("SELECT change_seq FROM store_clock").fetchone()[0]
        return "changed > ?", cursor, head

    def stats(self) -> StoreStats:
        with self._snapshot() as db:
            rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
            pages = {p: db.execute(f"PRAGMA {p}").fetchone()[0]
                     for p in ("page_size", "page_count", "freelist_count")}  # fmt: skip
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        size = sum(f.stat().st_size for f in files if f.exists())
        return StoreStats(rows, size, pages)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[SqliteDb]:
        if self._writer is None:
            raise PermissionError(f"{self.path} is open read-only")
        with self._write_lock:
            conn = self._writer.conn
            # IMMEDIATE takes the write lock up front, so a read-then-write inside (the
            # seen check, the audit head) cannot race another process's writer.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteDb(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[SqliteDb]:
        yield SqliteDb(self._reader())

    @contextmanager
    def _snapshot(self) -> Iterator[SqliteDb]:
        """Several reads that see one state of the database."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield SqliteDb(conn)
        finally:
            conn.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use and kept until close()
        (API worker threads are a bounded, reused pool)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # check_same_thread=False only so that close() may close it from another thread.
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)  # fmt: skip
            conn.execute("PRAGMA busy_timeout = 5000")
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn
