"""The edge box's store-and-forward queue: every message waits here, on disk, until
the broker has acknowledged it.

SQLite in WAL mode with `synchronous=FULL`, so a message is on disk when
`put` returns and a power cut loses nothing already stored. Messages leave
only through `delete`, which the uplink calls on the broker's PUBACK. The
queue has a bound; when full, the oldest message goes (a counter and the
`on_overflow` callback say so), because at a border post the newest picture
matters most and a stale backlog can be rebuilt from HQ's history.

The same file holds the node's batch sequence number, so that `seq` keeps
rising across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
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
                 on_overflow: Callable[[int], None] | None = None):  # fmt: skip
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
        self._count = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.conn.close()

    def next_seq(self) -> int:
        """The next batch sequence number, stored before it is handed out."""
        with self._lock, self._db.conn:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('seq', 0) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1"
            )
            return self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]

    def put(self, topic: str, payload: bytes, created: float | None = None) -> int:
        """Store a message; its id. When full, the oldest message is dropped first."""
        created = time.time() if created is None else created
        with self._lock, self._db.conn:
            overflow = self._count - self.max_messages + 1
            if overflow > 0:
                self._db.execute(
                    "DELETE FROM messages WHERE id IN "
                    "(SELECT id FROM messages ORDER BY id LIMIT ?)", [overflow]
                )  # fmt: skip
                self.counters.dropped_when_full += overflow
                self._count -= overflow
            cursor = self._db.execute(
                "INSERT INTO messages (topic, payload, created) VALUES (?, ?, ?)",
                [topic, payload, created],
            )
            self.counters.stored += 1
            self._count += 1
            message_id = cursor.lastrowid
        if overflow > 0 and self.on_overflow is not None:
            self.on_overflow(overflow)
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
        with self._lock, self._db.conn:
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
