"""HQ's store on PostgreSQL: the shared SQL (hq/store/sql/) over a psycopg 3 pool.

Each write is one transaction on a pooled connection; `commit_ingest_many`
returns once PostgreSQL has committed it (synchronous_commit as the server
has it: `on` by default, so an acknowledged batch survives a crash of the
server). Several HQ processes may write at once: de-duplication is the
seen_batches primary key, the audit chain's head is taken under an advisory
lock, and the change cursor is the writing transaction's id
(`pg_current_xact_id`), read back against a snapshot's xmin, so a follower
misses no commit whatever order writers finish in.

After each ingest commit HQ notifies the channel `dunewatch_changes`: a live
stream can LISTEN and then call `changes_since` rather than poll.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from hq.store import redacted
from hq.store.postgresql.schema import MIGRATIONS, TABLES, lock_key, migrate, schema_version
from hq.store.postgresql.seen import SeenWindows
from hq.store.postgresql.write import CHANGE_MARK, STAGING_DDL, write_batches
from hq.store.records import IngestBatch, StoreStats
from hq.store.sql.migrations import pending
from hq.store.sql.store import SqlStore

log = logging.getLogger(__name__)
CHANGES_CHANNEL = "dunewatch_changes"


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """The shared SQL's qmark placeholders as psycopg's (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgDb:
    """A psycopg connection as the shared SQL's `Db`."""

    json_text_values = "SELECT json_array_elements_text(CAST(? AS json))"

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self._mark: int | None = None

    def execute(self, sql: str, params=()) -> psycopg.Cursor:
        return self.conn.execute(_pg_sql(sql), list(params))

    def executemany(self, sql: str, rows) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), list(rows))

    def lock(self, name: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])

    def change_mark(self) -> int:
        if self._mark is None:
            self._mark = self.conn.execute(f"SELECT {CHANGE_MARK}").fetchone()[0]
        return self._mark


def _stage_tables(conn: psycopg.Connection) -> None:
    """A new pooled connection's staging tables for the ingest write path."""
    for statement in STAGING_DDL:
        conn.execute(statement)


class PostgresStore(SqlStore):
    """`url`: a libpq connection URL or string. `read_only=True` migrates nothing and
    refuses writes (audit-verify); the schema must then be current."""

    def __init__(self, url: str, read_only: bool = False, max_connections: int = 8):
        self.url = url
        self.read_only = read_only
        options = "-c default_transaction_read_only=on" if read_only else None
        where = redacted(url)
        try:
            conn = psycopg.connect(url, autocommit=True, options=options, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise ConnectionError(f"cannot reach the store {where}: {error}") from error
        with conn:
            if read_only:
                if pending(schema_version(conn), MIGRATIONS, where):
                    raise RuntimeError(f"{where} predates this code's schema: open it for "
                                       "writing once (python -m hq run) to migrate it")
            else:
                migrate(conn, where)
        kwargs = {"autocommit": True} | ({"options": options} if options else {})
        self._pool = ConnectionPool(url, min_size=1, max_size=max_connections, kwargs=kwargs,
                                    configure=None if read_only else _stage_tables,
                                    name="hq-store", open=True)  # fmt: skip
        self._pool.wait()
        self._seen = SeenWindows(self._stored_seqs)

    def close(self) -> None:
        self._pool.close()

    def already_seen(self, node_key: str, seq: int) -> bool:
        return self._seen.seen(node_key, seq)

    def commit_ingest_many(self, batches: Sequence[IngestBatch]) -> list[bool]:
        fresh = super().commit_ingest_many(batches)
        self._seen.committed((b.node_key, b.seq) for b, new in zip(batches, fresh, strict=True)
                             if new and b.seq is not None)  # fmt: skip
        return fresh

    def _stored_seqs(self, node_key: str, low: int, high: int) -> list[int]:
        with self._read() as db:
            return [row[0] for row in db.execute(
                "SELECT seq FROM seen_batches WHERE node_key = ? AND seq BETWEEN ? AND ?",
                [node_key, low, high])]  # fmt: skip

    def _write_ingest(self, db: PgDb, batches: Sequence[IngestBatch]) -> list[bool]:
        fresh = write_batches(db.conn, batches)
        if any(fresh):
            db.conn.execute(f"NOTIFY {CHANGES_CHANNEL}")
        return fresh

    def _changes_window(self, db: PgDb, cursor: int) -> tuple[str, int, int]:
        # Every transaction with an id below the snapshot's xmin had ended when it was
        # taken: what it wrote is in this snapshot. Those at or above may commit later,
        # so the next window starts there (and may show again what this one shows).
        xmin = db.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return "changed >= ?", cursor, xmin.fetchone()[0]

    def stats(self) -> StoreStats:
        with self._snapshot() as db:
            rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
            size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return StoreStats(rows, size)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[PgDb]:
        if self.read_only:
            raise PermissionError(f"{redacted(self.url)} is open read-only")
        with self._pool.connection() as conn, conn.transaction():
            yield PgDb(conn)

    @contextmanager
    def _read(self) -> Iterator[PgDb]:
        with self._pool.connection() as conn:
            yield PgDb(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[PgDb]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PgDb(conn)
