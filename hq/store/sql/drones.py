"""Our own drones' telemetry in the store, the same SQL for both backends: the newest
message per drone (`drones`, for the picture now) and every message (`drone_points`,
its history, read decimated as a track's is and purged with the track history).

A drone is (node_key, sysid): two posts may each fly a drone 1. The whole wire message
is kept as JSON beside the columns the queries use, so a field added to it later is kept
without a migration.
"""

from __future__ import annotations

from collections.abc import Sequence

from hq.store.records import node_key
from hq.store.sql.db import Db
from wire.messages import VehicleTelemetry

# Newest by time: a message from a post's backlog must not move the drone back.
_LATEST_SQL = (
    "INSERT INTO drones (node_key, sysid, time, lat, lon, telemetry) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (node_key, sysid) DO UPDATE SET time = excluded.time, lat = excluded.lat, "
    "lon = excluded.lon, telemetry = excluded.telemetry WHERE excluded.time >= drones.time"
)  # fmt: skip
# A message sent twice (the outbox resends what HQ had not acknowledged) is stored once.
_POINT_SQL = (
    "INSERT INTO drone_points (node_key, sysid, time, lat, lon, alt, telemetry) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_key, sysid, time) DO NOTHING"
)  # fmt: skip
_HISTORY_SQL = (
    "SELECT telemetry FROM drone_points WHERE node_key = ? AND sysid = ? "
    "AND time BETWEEN ? AND ? ORDER BY time"
)  # fmt: skip
# Every k-th point and the last, at most `max_points`: as a track's history is decimated.
_DECIMATED_HISTORY_SQL = """
WITH span AS (
    SELECT telemetry, time, ROW_NUMBER() OVER (ORDER BY time) AS rn, COUNT(*) OVER () AS total
    FROM drone_points WHERE node_key = ? AND sysid = ? AND time BETWEEN ? AND ?),
step AS (SELECT (total + ? - 3) / (? - 1) AS k FROM span LIMIT 1)
SELECT telemetry FROM span, step
WHERE (rn - 1) % (CASE WHEN k > 1 THEN k ELSE 1 END) = 0 OR rn = total
ORDER BY time
"""
# What retention deletes, by the time of the message (as track history is).
PURGES = {
    "drone_points": "DELETE FROM drone_points WHERE time < ?",
    "drones": "DELETE FROM drones WHERE time < ?",
}


def write_telemetry(db: Db, messages: Sequence[VehicleTelemetry]) -> None:
    """The messages into the history, and each drone's newest into `drones`."""
    if not messages:
        return
    rows = [(node_key(m.site, m.node), m.sysid, m.time, m.lat, m.lon, m.alt,
             m.model_dump_json()) for m in messages]  # fmt: skip
    db.executemany(_POINT_SQL, rows)
    newest: dict[tuple[str, int], tuple] = {}
    for row in rows:  # one upsert per drone: PostgreSQL refuses a key twice in one statement
        held = newest.get(row[:2])
        if held is None or row[2] >= held[2]:
            newest[row[:2]] = row
    db.executemany(_LATEST_SQL, [(*r[:5], r[6]) for _, r in sorted(newest.items())])


def drones(db: Db) -> list[VehicleTelemetry]:
    rows = db.execute("SELECT telemetry FROM drones ORDER BY node_key, sysid")
    return [VehicleTelemetry.model_validate_json(row[0]) for row in rows]


def drone_history(db: Db, key: str, sysid: int, t0: float, t1: float,
                  max_points: int | None) -> list[VehicleTelemetry]:  # fmt: skip
    if max_points is None:
        rows = db.execute(_HISTORY_SQL, [key, sysid, t0, t1])
    elif max_points < 2:
        raise ValueError("max_points must be at least 2 (the first and the last point)")
    else:
        rows = db.execute(_DECIMATED_HISTORY_SQL, [key, sysid, t0, t1, max_points, max_points])
    return [VehicleTelemetry.model_validate_json(row[0]) for row in rows]
