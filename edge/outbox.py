"""The edge box's store-and-forward queue: every message waits here, on disk, until
the broker has acknowledged it.

SQLite in WAL mode with `synchronous=FULL`, so a message is on disk when
`put` returns and a power cut loses nothing already stored. Messages leave
only through `delete`, which the uplink calls on the broker's PUBACK. The
queue has a bound; when full, the oldest message goes (a counter and the
`on_overflow` callback say so), because at a border post the newest picture
matters most and a stale backlog can be rebuilt from HQ's history.

The same file holds the node's batch sequence number, so that `seq` keeps
rising across restarts. A new file starts its numbers at the clock in
milliseconds, not at 0: if an edge box loses its outbox (a disk replaced, a
fresh install), the node's numbers still rise past every one it used before,
and HQ, which de-duplicates by (node, seq), does not take the new batches for
repeats of old ones. (That holds while the box's clock does not go back
before the old file's creation; a post's clock follows GPS.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils


@dataclass(frozen=True)
class StoredMessage:
    message_id: int
    topic: str
    payload: bytes
    created: float


@dataclass
class OutboxCounters:
    stored: int = 0
    delivered: int = 0
    dropped_when_full: int = 0


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 200_000,
                 on_overflow: Callable[[int], None] | None = None,
                 first_seq: int | None = None):  # fmt: skip
        """`first_seq`: the first number of a new file (default: the clock in ms)."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.max_messages = max_messages
        self.on_overflow = on_overflow
        self.counters = OutboxCounters()
        # The uplink's network thread deletes while the node's thread stores: one
        # connection, one lock.
        self._lock = threading.Lock()
        connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db = sqlite_utils.Database(connection)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # AUTOINCREMENT: ids never come back after deletion, so "after id N" stays true.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL)"
        )
        self._db["counters"].create({"name": str, "value": int}, pk="name", if_not_exists=True)
        first = int(time.time() * 1000) if first_seq is None else first_seq
        # Only a new file takes it: 'seq' holds the last number handed out, 'first_seq' where
        # this file began (so that "every batch from the first" can be checked).
        self._db.conn.executemany("INSERT OR IGNORE INTO counters (name, value) VALUES (?, ?)",
                                  [("seq", first - 1), ("first_seq", first)])  # fmt: skip
        self._count = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.conn.close()

    def next_seq(self) -> int:
        """The next batch sequence number, stored before it is handed out."""
        with self._transaction():
            return self._advance_seq()

    @property
    def first_seq(self) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT value FROM counters WHERE name = 'first_seq'").fetchone()[0]

    def put_numbered(self, topic: str, payload_of: Callable[[int], bytes],
                     created: float | None = None) -> tuple[int, int]:  # fmt: skip
        """Number a batch and store it in one transaction: (seq, message id).

        A process killed between taking a number and storing its batch would
        leave a gap that HQ could not tell from a lost batch; here both happen
        or neither does.
        """
        with self._transaction():
            seq = self._advance_seq()
            message_id, overflow = self._insert(topic, payload_of(seq), created)
        self._report_overflow(overflow)
        return seq, message_id

    def put(self, topic: str, payload: bytes, created: float | None = None) -> int:
        """Store a message; its id. When full, the oldest message is dropped first."""
        with self._transaction():
            message_id, overflow = self._insert(topic, payload, created)
        self._report_overflow(overflow)
        return message_id

    def after(self, message_id: int, limit: int = 100) -> list[StoredMessage]:
        """Up to `limit` stored messages with ids above `message_id`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, created FROM messages WHERE id > ? "
                "ORDER BY id LIMIT ?", [message_id, limit]
            ).fetchall()  # fmt: skip
        return [StoredMessage(*row) for row in rows]

    def delete(self, message_id: int) -> bool:
        """Forget a delivered message; False if it was already gone."""
        return self.delete_many([message_id]) == 1

    def delete_many(self, message_ids: list[int]) -> int:
        """Forget delivered messages in one transaction (one disk sync); how many were here."""
        with self._transaction():
            before = self._db.conn.total_changes
            self._db.conn.executemany("DELETE FROM messages WHERE id = ?",
                                      [(i,) for i in message_ids])  # fmt: skip
            gone = self._db.conn.total_changes - before
            self._count -= gone
        self.counters.delivered += gone
        return gone

    def newest_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]

    def depth(self) -> int:
        return self._count

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock and one explicit transaction: the connection is in autocommit
        mode, where `with connection:` alone would commit every statement by itself."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # These run inside `_transaction`.

    def _advance_seq(self) -> int:
        self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'seq'")
        return self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]

    def _insert(self, topic: str, payload: bytes, created: float | None) -> tuple[int, int]:
        overflow = max(0, self._count - self.max_messages + 1)
        if overflow:
            self._db.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)",
                [overflow],
            )
            self.counters.dropped_when_full += overflow
            self._count -= overflow
        cursor = self._db.execute(
            "INSERT INTO messages (topic, payload, created) VALUES (?, ?, ?)",
            [topic, payload, time.time() if created is None else created],
        )
        self.counters.stored += 1
        self._count += 1
        return cursor.lastrowid, overflow

    def _report_overflow(self, overflow: int) -> None:
        if overflow and self.on_overflow is not None:
            self.on_overflow(overflow)
