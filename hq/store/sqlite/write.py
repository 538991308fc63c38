"""The SQLite store's ingest write path: a group of IngestBatches as a few bulk statements.

`write_batches` runs inside the caller's transaction and leaves the database
as writing the batches one after another would: every history point, alert,
dead letter, status and (node, seq) record in order. The tables of current
state (node tracks, fused tracks) get only the row that would have won for
each key: the upserts keep the newest by time (the later one on a tie), and
a group of batches updates the same tracks again and again, so most of those
rows would be overwritten within the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter

import numpy as np

from hq.store.records import (
    FusedTracks,
    HistoryPoints,
    IngestBatch,
    NodeTrack,
    NodeTracks,
    node_key,
)
from wire.messages import Alert, NodeStatus

FUSED_COLUMNS = ("global_id", "time", "lat", "lon", "alt", "e", "n", "ve", "vn", "covariance",
                 "target_class", "status", "quality", "sources")  # fmt: skip
POINT_COLUMNS = ("global_id", "time", "lat", "lon", "e", "n", "ve", "vn", "var_e", "var_n",
                 "cov_en")  # fmt: skip


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


def write_batches(conn: sqlite3.Connection, batches: Sequence[IngestBatch]) -> None:
    """Write `batches` (all new) inside the caller's transaction."""
    if not batches:
        return
    _ensure_nodes(conn, set().union(*map(_node_keys, batches)))
    seqs = [(b.node_key, b.seq, b.received) for b in batches if b.seq is not None]
    conn.executemany(_SEEN_SQL, seqs)
    conn.executemany(_POSITION_SQL, seqs)
    conn.executemany(_NODE_STATUS_SQL, [_status_row(s) for b in batches for s in b.statuses])
    conn.executemany(_NODE_TRACK_SQL, _node_track_rows(batches))
    conn.executemany(_FUSED_SQL, _fused_rows(batches))
    conn.executemany(_POINT_SQL, _point_rows(batches))
    conn.executemany(_ALERT_SQL, [_alert_row(a) for b in batches for a in b.alerts])
    conn.executemany(_DEAD_LETTER_SQL,
                     [_dead_letter_row(d) for b in batches for d in b.dead_letters])  # fmt: skip


def _node_keys(batch: IngestBatch) -> set[str]:
    keys = {node_key(s.site, s.node) for s in batch.statuses}
    tracks = batch.node_tracks
    if isinstance(tracks, NodeTracks):  # all of one node: no track read back from its JSON
        if len(tracks):
            keys.add(tracks.node_key)
    else:
        keys.update(t.node_key for t in tracks)
    if batch.node_key is not None:
        keys.add(batch.node_key)
    return keys


def _ensure_nodes(conn: sqlite3.Connection, keys: set[str]) -> None:
    """A row per node before anything refers to it (a batch may beat the node's status)."""
    conn.executemany("INSERT INTO nodes (node_key, site, node) VALUES (?, ?, ?) "
                     "ON CONFLICT (node_key) DO NOTHING",
                     [(key, *key.partition("/")[::2]) for key in sorted(keys)])  # fmt: skip


# -- current state: the newest row per key ----------------------------------------------------


def _node_track_rows(batches: Sequence[IngestBatch]) -> list[tuple]:
    newest: dict[tuple[str, int], tuple] = {}  # (node, track id) -> row; row[3] is the time
    for batch in batches:
        for row in _node_track_rows_of(batch.node_tracks):
            kept = newest.get(row[:2])
            if kept is None or row[3] >= kept[3]:
                newest[row[:2]] = row
    return list(newest.values())


def _node_track_rows_of(tracks: Sequence[NodeTrack]) -> Iterable[tuple]:
    if isinstance(tracks, NodeTracks):
        return zip(repeat(tracks.node_key), tracks.track_id, tracks.global_id, tracks.time,
                   tracks.lat, tracks.lon, tracks.status, tracks.target_class,
                   tracks.track_json)  # fmt: skip
    return map(_node_track_row, tracks)


def _fused_rows(batches: Sequence[IngestBatch]) -> list[tuple]:
    tracks = FusedTracks.concat([FusedTracks.of(b.fused_tracks) for b in batches])
    if not len(tracks):
        return []
    tracks = tracks.take(newest_per_key(tracks.global_id, tracks.time))
    return list(zip(
        tracks.global_id.tolist(), tracks.time.tolist(), tracks.lat.tolist(),
        tracks.lon.tolist(), tracks.alt.tolist(), *tracks.state.T.tolist(),
        [json.dumps(c) for c in tracks.covariance.tolist()],
        [str(c) for c in tracks.target_class], [str(s) for s in tracks.status],
        tracks.quality.tolist(), [json.dumps(list(s)) for s in tracks.sources], strict=True,
    ))  # fmt: skip


def newest_per_key(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Indices, in order, of the row each key keeps when all are upserted one after another
    with a `time >=` guard: the last of the key's rows with its greatest time."""
    order = np.lexsort((np.arange(keys.size), times, keys))  # by key, then time, then position
    last = np.append(keys[order][1:] != keys[order][:-1], True)
    return np.sort(order[last])


def _point_rows(batches: Sequence[IngestBatch]) -> list[tuple]:
    points = HistoryPoints.concat([HistoryPoints.of(b.history) for b in batches])
    if not len(points):
        return []
    # In key order, each track's points go into its range of the B-tree together (a few
    # pages) rather than one page per point; the sort is stable, so of two points with
    # one key the later still replaces the earlier.
    points = points.take(np.lexsort((points.time, points.global_id)))
    return list(zip(*(getattr(points, c).tolist() for c in POINT_COLUMNS), strict=True))


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
_FUSED_SQL = _upsert_sql("fused_tracks", FUSED_COLUMNS, ["global_id"], guard="time")
_ALERT_SQL = _upsert_sql("alerts", ("alert_id", "site", "node", "alert_type", "severity",
                                    "state", "first_time", "time", "alert"), ["alert_id"],
                         guard="time", keep=("state", "first_time"))  # fmt: skip
# A point sent twice (a resent batch after a lost seq record cannot happen, but fusion may
# re-emit a time) replaces itself rather than failing the batch.
_POINT_SQL = (f"INSERT OR REPLACE INTO track_points ({', '.join(POINT_COLUMNS)}) "
              f"VALUES ({', '.join('?' * len(POINT_COLUMNS))})")  # fmt: skip
_DEAD_LETTER_SQL = ("INSERT INTO dead_letters (received, topic, reason, payload, node_key) "
                    "VALUES (?, ?, ?, ?, ?)")  # fmt: skip

_dead_letter_row = attrgetter("received", "topic", "reason", "payload", "node_key")


def _status_row(status: NodeStatus) -> tuple:
    return (node_key(status.site, status.node), status.site, status.node, status.state,
            status.time, status.model_dump_json())  # fmt: skip


def _node_track_row(entry: NodeTrack) -> tuple:
    t = entry.track
    return (entry.node_key, t.track_id, entry.global_id, t.time, t.lat, t.lon, str(t.status),
            str(t.target_class), t.model_dump_json())  # fmt: skip


def _alert_row(alert: Alert) -> tuple:
    return (alert.alert_id, alert.site, alert.node, alert.alert_type, alert.severity, "open",
            alert.time, alert.time, alert.model_dump_json())  # fmt: skip
