"""The SQLite store's ingest write path: a group of IngestBatches as a few executemany
statements, inside the caller's transaction. What each table gets is
hq/store/sql/batch_rows.py; the alerts, statuses and (node, seq) records, few
per batch, go one after another in order, as the batches would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter

from hq.store.records import IngestBatch, node_key
from hq.store.sql.batch_rows import fused_columns, node_keys, node_track_rows, point_columns
from hq.store.sql.reads import FUSED_COLUMNS, POINT_COLUMNS
from wire.messages import Alert, NodeStatus


def unseen(conn: sqlite3.Connection, batches: Sequence[IngestBatch]) -> list[bool]:
    """Per batch, whether it is new: no (node, seq), or one neither stored nor earlier here."""
    fresh, claimed = [], set()
    for batch in batches:
        key = (batch.node_key, batch.seq)
        fresh.append(batch.seq is None or (key not in claimed and not seen(conn, *key)))
        if batch.seq is not None:
            claimed.add(key)
    return fresh


def seen(conn: sqlite3.Connection, key: str, seq: int) -> bool:
    sql = "SELECT 1 FROM seen_batches WHERE node_key = ? AND seq = ?"
    return conn.execute(sql, [key, seq]).fetchone() is not None


def write_batches(conn: sqlite3.Connection, batches: Sequence[IngestBatch], change: int) -> None:
    """Write `batches` (all new) inside the caller's transaction; `change`: the mark the
    tracks and alerts it changes get (the change cursor)."""
    if not batches:
        return
    # A row per node before anything refers to it (a batch may beat the node's status).
    conn.executemany("INSERT INTO nodes (node_key, site, node) VALUES (?, ?, ?) "
                     "ON CONFLICT (node_key) DO NOTHING",
                     [(key, *key.partition("/")[::2]) for key in node_keys(batches)])
    seqs = [(b.node_key, b.seq, b.received) for b in batches if b.seq is not None]
    conn.executemany(_SEEN_SQL, seqs)
    conn.executemany(_POSITION_SQL, seqs)
    conn.executemany(_NODE_STATUS_SQL, [_status_row(s) for b in batches for s in b.statuses])
    conn.executemany(_NODE_TRACK_SQL, node_track_rows(batches))
    fused = fused_columns(batches)
    if fused is not None:
        conn.executemany(_FUSED_SQL, zip(*fused, repeat(change), strict=False))
    points = point_columns(batches)
    if points is not None:
        conn.executemany(_POINT_SQL, zip(*points, strict=True))
    conn.executemany(_ALERT_SQL, [_alert_row(a, change) for b in batches for a in b.alerts])
    conn.executemany(_DEAD_LETTER_SQL,
                     [_dead_letter_row(d) for b in batches for d in b.dead_letters])  # fmt: skip


# -- statements ---------------------------------------------------------------------------------


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], guard: str,
                keep: Sequence[str] = ()) -> str:  # fmt: skip
    """Insert, or update the stored row unless it is newer (by `guard`) than the incoming one:
    batches from an edge's backlog arrive after fresher ones and must not roll state back."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in (*key, *keep))
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
            f" WHERE {table}.{guard} IS NULL OR excluded.{guard} >= {table}.{guard}")  # fmt: skip


_SEEN_SQL = "INSERT INTO seen_batches (node_key, seq, received) VALUES (?, ?, ?)"
_POSITION_SQL = (
    "INSERT INTO ingest_positions (node_key, last_seq, last_received, batches) "
    "VALUES (?, ?, ?, 1) ON CONFLICT (node_key) DO UPDATE SET "
    "last_seq = MAX(last_seq, excluded.last_seq), last_received = excluded.last_received, "
    "batches = batches + 1"
)  # fmt: skip
_NODE_STATUS_SQL = _upsert_sql("nodes", ("node_key", "site", "node", "state", "status_time",
                                         "status"), ["node_key"], guard="status_time")  # fmt: skip
_NODE_TRACK_SQL = _upsert_sql("node_tracks", ("node_key", "track_id", "global_id", "time", "lat",
                                              "lon", "status", "target_class", "track"),
                              ["node_key", "track_id"], guard="time")  # fmt: skip
_FUSED_SQL = _upsert_sql("fused_tracks", (*FUSED_COLUMNS, "changed"), ["global_id"],
                         guard="time")  # fmt: skip
_ALERT_SQL = _upsert_sql("alerts", ("alert_id", "site", "node", "alert_type", "severity",
                                    "state", "first_time", "time", "alert", "changed"),
                         ["alert_id"], guard="time", keep=("state", "first_time"))  # fmt: skip
# A point sent twice (a resent batch after a lost seq record cannot happen, but fusion may
# re-emit a time) replaces itself rather than failing the batch.
_POINT_SQL = (f"INSERT OR REPLACE INTO track_points ({', '.join(POINT_COLUMNS)}) "
              f"VALUES ({', '.join('?' * len(POINT_COLUMNS))})")  # fmt: skip
_DEAD_LETTER_SQL = ("INSERT INTO dead_letters (received, topic, reason, payload, node_key, "
                    "payload_size, payload_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)")  # fmt: skip

_dead_letter_row = attrgetter("received", "topic", "reason", "payload", "node_key",
                              "payload_size", "payload_sha256")  # fmt: skip


def _status_row(status: NodeStatus) -> tuple:
    return (node_key(status.site, status.node), status.site, status.node, status.state,
            status.time, status.model_dump_json())  # fmt: skip


def _alert_row(alert: Alert, change: int) -> tuple:
    return (alert.alert_id, alert.site, alert.node, alert.alert_type, alert.severity, "open",
            alert.time, alert.time, alert.model_dump_json(), change)  # fmt: skip
