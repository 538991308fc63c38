"""What HQ reads back: fused tracks (as records and as columns), history, node tracks,
nodes, alerts and dead letters. Each function takes a `Db` and the query's arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hq.store.interface import load_json
from hq.store.records import (
    AlertRecord,
    BBox,
    DeadLetter,
    FusedTrack,
    FusedTracks,
    HistoryPoint,
    HistoryPoints,
    NodeRecord,
    NodeTrack,
)
from hq.store.sql.db import Cursor, Db
from wire.messages import Alert, NodeStatus, TargetClass, Track, TrackStatus

FUSED_COLUMNS = ("global_id", "time", "lat", "lon", "alt", "e", "n", "ve", "vn", "covariance",
                 "target_class", "status", "quality", "sources")  # fmt: skip
POINT_COLUMNS = ("global_id", "time", "lat", "lon", "e", "n", "ve", "vn", "var_e", "var_n",
                 "cov_en")  # fmt: skip
ALERT_COLUMNS = ("alert", "state", "first_time", "acknowledged_by", "acknowledged_at",
                 "assigned_to", "assigned_by", "assigned_at", "resolved_by", "resolved_at",
                 "resolution_note")  # fmt: skip

# Enum members by value: TargetClass(value) costs a microsecond a call, a dict a tenth of
# that; a value missing here still goes through the enum, which refuses it as before.
_CLASSES = {c.value: c for c in TargetClass}
_STATUSES = {s.value: s for s in TrackStatus}


# -- fused tracks ----------------------------------------------------------------------------


def current_tracks_query(bbox: BBox | None = None, target_class: TargetClass | None = None,
                         status: TrackStatus | None = None,
                         where: Sequence[tuple[str, Any]] = ()) -> tuple[str, list]:  # fmt: skip
    """The SELECT of current fused tracks (FUSED_COLUMNS, by global id) and its parameters;
    `where`: more (condition, parameter) pairs."""
    conditions = list(where)
    if bbox is not None:
        conditions += [("lat BETWEEN ? AND ?", (bbox.south, bbox.north)),
                       ("lon BETWEEN ? AND ?", (bbox.west, bbox.east))]  # fmt: skip
    for column, value in (("target_class", target_class), ("status", status)):
        if value is not None:
            conditions.append((f"{column} = ?", (str(value),)))
    sql = f"SELECT {', '.join(FUSED_COLUMNS)} FROM fused_tracks"
    if conditions:
        sql += " WHERE " + " AND ".join(c for c, _ in conditions)
    return sql + " ORDER BY global_id", [p for _, params in conditions for p in params]


def fused_track(db: Db, global_id: int) -> FusedTrack | None:
    row = db.execute(f"SELECT {', '.join(FUSED_COLUMNS)} FROM fused_tracks WHERE global_id = ?",
                     [global_id]).fetchone()  # fmt: skip
    return None if row is None else fused_from_row(row)


def fused_from_row(row: Sequence) -> FusedTrack:
    """A fused_tracks row (FUSED_COLUMNS order) as the record it was written from."""
    gid, t, lat, lon, alt, e, n, ve, vn, cov, cls, status, quality, sources = row
    return FusedTrack(gid, t, lat, lon, alt, (e, n, ve, vn), tuple(load_json(cov)),
                      _CLASSES.get(cls) or TargetClass(cls),
                      _STATUSES.get(status) or TrackStatus(status), quality,
                      tuple(load_json(sources)))  # fmt: skip


def fused_table(cursor: Cursor) -> FusedTracks:
    """The rows of a fused_tracks query (FUSED_COLUMNS order) as columns. At 10,000 rows
    this costs a fraction of making a FusedTrack of each. Rows are taken a thousand at a
    time and each covariance parsed straight into its row of one array: few containers
    outlive their moment, as 10,000 row tuples or per-row lists would, setting off the
    garbage collector's full passes (measured: up to four times the time of the read)."""
    columns: list[list] = [[] for _ in FUSED_COLUMNS]
    while rows := cursor.fetchmany(1000):
        for column, values in zip(columns, zip(*rows, strict=True), strict=True):
            column.extend(values)
    if not columns[0]:
        return FusedTracks.of([])
    gid, t, lat, lon, alt, e, n, ve, vn, cov, cls, status, quality, sources = columns
    covariance = np.empty((len(cov), 16))
    for row, text in enumerate(cov):
        covariance[row] = load_json(text)
    return FusedTracks(
        np.array(gid, np.int64), *(np.array(c, float) for c in (t, lat, lon, alt)),
        np.array([e, n, ve, vn], float).T.copy(), covariance,
        tuple(_CLASSES.get(c) or TargetClass(c) for c in cls),
        tuple(_STATUSES.get(s) or TrackStatus(s) for s in status),
        np.array(quality, float), tuple(tuple(load_json(s)) for s in sources),
    )  # fmt: skip


# -- history ---------------------------------------------------------------------------------

_HISTORY_SQL = (f"SELECT {', '.join(POINT_COLUMNS)} FROM track_points "
                "WHERE global_id = ? AND time BETWEEN ? AND ? ORDER BY time")  # fmt: skip

# Every k-th point and the last, k = ceil((n - 1) / (m - 1)): at most m points, the first
# and last always among them. By index, not time: points come at the tracker's cadence.
_DECIMATED_HISTORY_SQL = f"""
WITH span AS (
    SELECT {", ".join(POINT_COLUMNS)}, ROW_NUMBER() OVER (ORDER BY time) AS rn,
           COUNT(*) OVER () AS total
    FROM track_points WHERE global_id = ? AND time BETWEEN ? AND ?),
step AS (SELECT (total + ? - 3) / (? - 1) AS k FROM span LIMIT 1)
SELECT {", ".join(POINT_COLUMNS)} FROM span, step
WHERE (rn - 1) % (CASE WHEN k > 1 THEN k ELSE 1 END) = 0 OR rn = total
ORDER BY time
"""


def track_history(db: Db, global_id: int, t0: float, t1: float,
                  max_points: int | None) -> list[HistoryPoint]:  # fmt: skip
    if max_points is None:
        rows = db.execute(_HISTORY_SQL, [global_id, t0, t1])
    elif max_points < 2:
        raise ValueError("max_points must be at least 2 (the first and the last point)")
    else:
        rows = db.execute(_DECIMATED_HISTORY_SQL, [global_id, t0, t1, max_points, max_points])
    return [HistoryPoint(*row) for row in rows]


# The keys first, from the (time, lat, lon) index alone, then only those rows: SQLite would
# otherwise read every row of the window before testing the box (measured: 33 ms against
# 0.4 ms for an hour of 100,000 points over a day).
_HISTORY_IN_BOX_SQL = (
    f"SELECT {', '.join(f'p.{c}' for c in POINT_COLUMNS)} FROM (SELECT global_id, time "
    "FROM track_points WHERE time BETWEEN ? AND ? AND lat BETWEEN ? AND ? AND lon BETWEEN ? "
    "AND ?) AS k JOIN track_points p ON p.global_id = k.global_id AND p.time = k.time "
    "ORDER BY p.global_id, p.time"
)  # fmt: skip


def history_in_box(db: Db, bbox: BBox, t0: float, t1: float) -> HistoryPoints:
    rows = db.execute(_HISTORY_IN_BOX_SQL, [t0, t1, bbox.south, bbox.north, bbox.west,
                                            bbox.east]).fetchall()  # fmt: skip
    if not rows:
        return HistoryPoints.of([])
    columns = list(zip(*rows, strict=True))
    return HistoryPoints(np.array(columns[0], np.int64),
                         *(np.array(c, float) for c in columns[1:]))  # fmt: skip


def max_global_id(db: Db) -> int:
    """The highest global id stored (0 when none)."""
    current = db.execute("SELECT COALESCE(MAX(global_id), 0) FROM fused_tracks").fetchone()
    history = db.execute("SELECT COALESCE(MAX(global_id), 0) FROM track_points").fetchone()
    return int(max(current[0], history[0]))


# -- nodes -----------------------------------------------------------------------------------


def already_seen(db: Db, node_key: str, seq: int) -> bool:
    sql = "SELECT 1 FROM seen_batches WHERE node_key = ? AND seq = ?"
    return db.execute(sql, [node_key, seq]).fetchone() is not None


def node_tracks(db: Db, node_key: str | None) -> list[NodeTrack]:
    sql, params = "SELECT node_key, track, global_id FROM node_tracks", []
    if node_key is not None:
        sql, params = sql + " WHERE node_key = ?", [node_key]
    rows = db.execute(sql + " ORDER BY node_key, track_id", params)
    return [NodeTrack(key, Track.model_validate_json(track), gid) for key, track, gid in rows]


def node_tracks_of(db: Db, global_id: int) -> list[NodeTrack]:
    rows = db.execute("SELECT node_key, track FROM node_tracks WHERE global_id = ? "
                      "ORDER BY node_key, track_id", [global_id])  # fmt: skip
    return [NodeTrack(key, Track.model_validate_json(track), global_id) for key, track in rows]


def nodes(db: Db) -> list[NodeRecord]:
    rows = db.execute(
        "SELECT n.node_key, n.status, p.last_seq, p.last_received, COALESCE(p.batches, 0) "
        "FROM nodes n LEFT JOIN ingest_positions p ON p.node_key = n.node_key "
        "ORDER BY n.node_key")  # fmt: skip
    return [NodeRecord(key, NodeStatus.model_validate_json(status) if status else None, *rest)
            for key, status, *rest in rows]  # fmt: skip


# -- alerts and dead letters -----------------------------------------------------------------


def alerts_where(db: Db, *conditions: tuple[str, Any], limit: int) -> list[AlertRecord]:
    """The newest alerts first, of those meeting every condition whose value is given."""
    where, params = optional_filters(*conditions)
    rows = db.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts{where} "
                      "ORDER BY time DESC LIMIT ?", [*params, limit])  # fmt: skip
    return [alert_from_row(row) for row in rows]


def alert_from_row(row: Sequence) -> AlertRecord:
    return AlertRecord(Alert.model_validate_json(row[0]), *row[1:])


def dead_letters(db: Db, since: float | None, limit: int) -> list[DeadLetter]:
    where, params = optional_filters(("received >= ?", since))
    rows = db.execute("SELECT received, topic, reason, payload, node_key, id, payload_size, "
                      f"payload_sha256 FROM dead_letters{where} ORDER BY received DESC LIMIT ?",
                      [*params, limit])  # fmt: skip
    return [DeadLetter(*row) for row in rows]


def optional_filters(*conditions: tuple[str, Any]) -> tuple[str, list]:
    """' WHERE a AND b' over the conditions whose value is given, and those values."""
    given = [(sql, value) for sql, value in conditions if value is not None]
    where = " AND ".join(sql for sql, _ in given)
    return (f" WHERE {where}" if where else ""), [value for _, value in given]
