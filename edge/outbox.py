"""The edge box's store-and-forward queue: every message waits here, on disk, until
it is delivered.

SQLite in WAL mode with `synchronous=FULL`, so a message is on disk when
`put` returns and a power cut loses nothing already stored. Messages leave
only through `delete` (the uplink calls it on the broker's PUBACK for a
message without a number) and `confirm` (for numbered batches, when HQ says
its store holds them: wire/delivery.py). The queue has a bound in messages
and in bytes; when full, the oldest messages go (a counter and the
`on_overflow` callback say so), because at a border post the newest picture
matters most and a stale backlog can be rebuilt from HQ's history.

A full disk is the same policy by force: when SQLite cannot grow the file
(SQLITE_FULL), the oldest tenth of the queue is dropped and the message
stored in the room made; if even that fails, the message itself is dropped.
Either way it is counted, `on_overflow` hears of it, and `put` raises
`OutboxFull` only in the second case, so that the node can count and alert
and carry on tracking.

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

FULL_DISK_DROP_FRACTION = 0.1  # of the queue, oldest first, to make room on a full disk


class OutboxFull(Exception):
    """The disk under the outbox is full even after dropping the oldest: the message is lost."""


@dataclass(frozen=True)
class StoredMessage:
    message_id: int
    topic: str
    payload: bytes
    created: float
    seq: int | None = None  # a numbered batch's seq: it waits for HQ's confirmation


@dataclass
class OutboxCounters:
    stored: int = 0
    delivered: int = 0
    dropped_when_full: int = 0  # by the bound in messages or bytes
    dropped_disk_full: int = 0  # oldest messages dropped to make room on a full disk
    lost_disk_full: int = 0  # new messages that found no room even then


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 200_000,
                 on_overflow: Callable[[int], None] | None = None,
                 first_seq: int | None = None,
                 max_bytes: int = 1024 * 1024 * 1024,
                 max_file_bytes: int | None = None):  # fmt: skip
        """`first_seq`: the first number of a new file (default: the clock in ms).
        `max_bytes`: the most payload bytes held (one message larger than it is still
        stored, alone). `max_file_bytes`: a quota on the file itself (SQLite's
        max_page_count); reaching it is handled as a full disk."""
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be at least 1")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.on_overflow = on_overflow
        self.counters = OutboxCounters()
        # The uplink's network thread deletes while the node's thread stores: one
        # connection, one lock.
        self._lock = threading.Lock()
        connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db = sqlite_utils.Database(connection)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        if max_file_bytes is not None:
            page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {max(1, max_file_bytes // page_size)}")
        # AUTOINCREMENT: ids never come back after deletion, so "after id N" stays true.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL, seq INTEGER)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        if "seq" not in columns:  # a file from before end-to-end acknowledgement
            self._db.execute("ALTER TABLE messages ADD COLUMN seq INTEGER")
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_seq ON messages (seq)")
        self._db["counters"].create({"name": str, "value": int}, pk="name", if_not_exists=True)
        first = int(time.time() * 1000) if first_seq is None else first_seq
        # Only a new file takes it: 'seq' holds the last number handed out, 'first_seq' where
        # this file began (so that "every batch from the first" can be checked).
        self._db.conn.executemany("INSERT OR IGNORE INTO counters (name, value) VALUES (?, ?)",
                                  [("seq", first - 1), ("first_seq", first)])  # fmt: skip
        self._count, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages"
        ).fetchone()

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
                "SELECT value FROM counters WHERE name = 'first_seq'"
            ).fetchone()[0]

    def put_numbered(self, topic: str, payload_of: Callable[[int], bytes],
                     created: float | None = None) -> tuple[int, int]:  # fmt: skip
        """Number a batch and store it in one transaction: (seq, message id).

        A process killed between taking a number and storing its batch would
        leave a gap that HQ could not tell from a lost batch; here both happen
        or neither does.
        """

        def store() -> tuple[int, int, int]:
            seq = self._advance_seq()
            return seq, *self._insert(topic, payload_of(seq), created, seq)

        seq, message_id, overflow = self._on_full_disk_make_room(store)
        self._stored(overflow)
        return seq, message_id

    def put(self, topic: str, payload: bytes, created: float | None = None) -> int:
        """Store a message; its id. When full, the oldest message is dropped first."""
        message_id, overflow = self._on_full_disk_make_room(
            lambda: self._insert(topic, payload, created, None)
        )
        self._stored(overflow)
        return message_id

    def after(self, message_id: int, limit: int = 100) -> list[StoredMessage]:
        """Up to `limit` stored messages with ids above `message_id`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, created, seq FROM messages WHERE id > ? "
                "ORDER BY id LIMIT ?", [message_id, limit]
            ).fetchall()  # fmt: skip
        return [StoredMessage(*row) for row in rows]

    def confirm(self, ranges: list[tuple[int, int]]) -> list[int]:
        """Forget the numbered batches whose seqs lie in `ranges` ([low, high], both
        included): HQ's store holds them. The ids of those that were here."""
        with self._transaction():
            gone = []
            for low, high in ranges:
                gone += [
                    row[0]
                    for row in self._db.execute(
                        "SELECT id FROM messages WHERE seq BETWEEN ? AND ?", [low, high]
                    )
                ]
            self._delete_ids(gone)
        self.counters.delivered += len(gone)
        return gone

    def delete(self, message_id: int) -> bool:
        """Forget a delivered message; False if it was already gone."""
        return self.delete_many([message_id]) == 1

    def delete_many(self, message_ids: list[int]) -> int:
        """Forget delivered messages in one transaction (one disk sync); how many were here."""
        with self._transaction():
            gone = self._delete_ids(message_ids)
        self.counters.delivered += gone
        return gone

    def newest_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]

    def depth(self) -> int:
        return self._count

    def size_bytes(self) -> int:
        """The payload bytes held."""
        return self._bytes

    def _on_full_disk_make_room(self, store: Callable[[], tuple]) -> tuple:
        """`store()` in a transaction; on a full disk, again after dropping the oldest."""
        try:
            with self._transaction():
                return store()
        except sqlite3.OperationalError as error:
            if not _disk_full(error):
                raise
        try:
            with self._transaction():
                dropped = self._drop_oldest(max(1, int(self._count * FULL_DISK_DROP_FRACTION)))
            self.counters.dropped_disk_full += dropped
            self._report_overflow(dropped)
            with self._transaction():
                return store()
        except sqlite3.OperationalError as error:
            if not _disk_full(error):
                raise
            self.counters.lost_disk_full += 1
            self._report_overflow(1)
            raise OutboxFull(f"the disk under the outbox is full: {error}") from error

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock and one explicit transaction: the connection is in autocommit
        mode, where `with connection:` alone would commit every statement by itself."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite has rolled back already after some errors (a full disk among them).
                if self._db.conn.in_transaction:
                    self._db.execute("ROLLBACK")
                self._recount()
                raise

    # These run inside `_transaction`.

    def _advance_seq(self) -> int:
        self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'seq'")
        return self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]

    def _insert(self, topic: str, payload: bytes, created: float | None,
                seq: int | None) -> tuple[int, int]:  # fmt: skip
        overflow = self._drop_oldest(max(0, self._count - self.max_messages + 1))
        while self._count and self._bytes + len(payload) > self.max_bytes:
            overflow += self._drop_oldest(1)
        cursor = self._db.execute(
            "INSERT INTO messages (topic, payload, created, seq) VALUES (?, ?, ?, ?)",
            [topic, payload, time.time() if created is None else created, seq],
        )
        self._count += 1
        self._bytes += len(payload)
        return cursor.lastrowid, overflow

    def _drop_oldest(self, n: int) -> int:
        if n <= 0:
            return 0
        ids = [row[0] for row in self._db.execute(
            "SELECT id FROM messages ORDER BY id LIMIT ?", [n])]  # fmt: skip
        return self._delete_ids(ids)

    def _delete_ids(self, message_ids: list[int]) -> int:
        """Delete these rows and keep the count and size; how many were here."""
        gone = size = 0
        for message_id in message_ids:
            row = self._db.execute("DELETE FROM messages WHERE id = ? RETURNING LENGTH(payload)",
                                   [message_id]).fetchone()  # fmt: skip
            if row is not None:
                gone += 1
                size += row[0]
        self._count -= gone
        self._bytes -= size
        return gone

    def _recount(self) -> None:
        """Count and size as the file holds them, after a transaction was rolled back."""
        self._count, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages"
        ).fetchone()

    def _stored(self, overflow: int) -> None:
        """Count a message stored (after its commit: a rolled-back one is not counted)."""
        self.counters.stored += 1
        self.counters.dropped_when_full += overflow
        self._report_overflow(overflow)

    def _report_overflow(self, overflow: int) -> None:
        if overflow and self.on_overflow is not None:
            self.on_overflow(overflow)


def _disk_full(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "full" in str(error)
