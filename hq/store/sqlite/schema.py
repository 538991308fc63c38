"""The SQLite store's file: its migrations, and the writer connection's settings.

`PRAGMA user_version` holds the schema version (hq/store/sql/migrations.py).
Migration 1 is the first schema, made through sqlite-utils; later ones are
plain SQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from hq.store.sql.migrations import Migration, pending
from hq.store.sql.reads import FUSED_COLUMNS

TABLES = ("nodes", "ingest_positions", "seen_batches", "node_tracks", "fused_tracks",
          "track_points", "alerts", "dead_letters", "audit_log", "api_tokens", "areas",
          "places", "track_labels", "drones", "drone_points")  # fmt: skip

# What sqlite-utils' create() cannot say: WITHOUT ROWID tables and triggers.
_SQLITE_EXTRAS = """
-- One track's history over a window is one contiguous range of the key; WITHOUT ROWID
-- stores each point once (no separate table and index). No foreign key to fused_tracks:
-- a late point must never fail a whole batch, and retention deletes by time anyway.
CREATE TABLE IF NOT EXISTS track_points (
    global_id INTEGER NOT NULL, time REAL NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    e REAL NOT NULL, n REAL NOT NULL, ve REAL NOT NULL, vn REAL NOT NULL,
    var_e REAL NOT NULL, var_n REAL NOT NULL, cov_en REAL NOT NULL,
    PRIMARY KEY (global_id, time)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS track_points_time ON track_points (time);

CREATE TABLE IF NOT EXISTS seen_batches (
    node_key TEXT NOT NULL REFERENCES nodes (node_key), seq INTEGER NOT NULL,
    received REAL NOT NULL, PRIMARY KEY (node_key, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_batches_received ON seen_batches (received);

-- Append-only in the file too, against a slip in code; the hash chain is what shows
-- deliberate tampering (anyone with the file can drop a trigger). The six-month floor
-- uses the database's clock, so a wrong `now` passed to purge cannot get round it.
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_keep_six_months BEFORE DELETE ON audit_log
WHEN old.time > CAST(strftime('%s', 'now') AS REAL) - 183 * 86400 BEGIN
    SELECT RAISE(ABORT, 'audit rows younger than 183 days are kept');
END;
"""

MIGRATIONS = (
    Migration(1, "tracks, history, nodes, alerts, dead letters, the audit log", ()),
    Migration(2, "operator state (tokens, areas, places, labels, alert workflow) and the "
                 "change cursor", (
        # One row: the change cursor, bumped by every transaction that changes a track or
        # an alert (writers take turns in SQLite, so its order is the commits' order).
        "CREATE TABLE store_clock (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "change_seq INTEGER NOT NULL)",
        "INSERT INTO store_clock VALUES (1, 0)",
        "ALTER TABLE fused_tracks ADD COLUMN changed INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX fused_tracks_changed ON fused_tracks (changed)",
        "ALTER TABLE alerts ADD COLUMN changed INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX alerts_changed ON alerts (changed)",
        *(f"ALTER TABLE alerts ADD COLUMN {column}" for column in (
            "assigned_to TEXT", "assigned_by TEXT", "assigned_at REAL", "resolved_by TEXT",
            "resolved_at REAL", "resolution_note TEXT")),
        "CREATE TABLE api_tokens (token_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "role TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL, "
        "secret_sha256 TEXT NOT NULL)",
        "CREATE INDEX api_tokens_name ON api_tokens (name)",
        "CREATE TABLE areas (name TEXT PRIMARY KEY, "
        "kind TEXT NOT NULL CHECK (kind IN ('zone', 'border')), "
        "points TEXT NOT NULL, updated_by TEXT NOT NULL, updated_at REAL NOT NULL)",
        "CREATE TABLE places (name TEXT PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, "
        "radius_m REAL NOT NULL, updated_by TEXT NOT NULL, updated_at REAL NOT NULL)",
        "CREATE TABLE track_labels (global_id INTEGER PRIMARY KEY, affiliation TEXT, "
        "target_class TEXT, updated_by TEXT NOT NULL, updated_at REAL NOT NULL)",
        # History in a box and a window: the box is tested inside the index, so only the
        # points in it are read from the table (retention's time cut uses it as before).
        "DROP INDEX track_points_time",
        "CREATE INDEX track_points_time_place ON track_points (time, lat, lon)",
    )),  # fmt: skip
    Migration(3, "our own drones: the newest telemetry of each, and its history", (
        "CREATE TABLE drones (node_key TEXT NOT NULL, sysid INTEGER NOT NULL, "
        "time REAL NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, telemetry TEXT NOT NULL, "
        "PRIMARY KEY (node_key, sysid))",
        # One drone's history over a window is one range of the key, as a track's is.
        "CREATE TABLE drone_points (node_key TEXT NOT NULL, sysid INTEGER NOT NULL, "
        "time REAL NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, alt REAL NOT NULL, "
        "telemetry TEXT NOT NULL, PRIMARY KEY (node_key, sysid, time)) WITHOUT ROWID",
        "CREATE INDEX drone_points_time ON drone_points (time)",
    )),  # fmt: skip
    Migration(4, "dead letters keep the first bytes of a payload, with its size and hash", (
        "ALTER TABLE dead_letters ADD COLUMN payload_size INTEGER",
        "ALTER TABLE dead_letters ADD COLUMN payload_sha256 TEXT",
    )),
)


def open_writer(path: Path, synchronous: str) -> sqlite_utils.Database:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not the driver's.
    db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False,
                                               isolation_level=None))  # fmt: skip
    # A 32 MB page cache keeps the B-tree pages a batch touches (one per track's history
    # range) in memory between batches: up to 20% faster writes (measured with NORMAL).
    for pragma in ("journal_mode = WAL", f"synchronous = {synchronous}", "foreign_keys = ON",
                   "busy_timeout = 5000", "cache_size = -32000"):  # fmt: skip
        db.execute(f"PRAGMA {pragma}")
    return db


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> None:
    """Apply the migrations this file lacks, each in its own transaction."""
    conn = db.conn
    for migration in pending(schema_version(conn), MIGRATIONS, str(db.conn)):
        if migration.version == 1:
            # sqlite-utils and executescript commit as they go; every statement of the
            # first schema is IF NOT EXISTS, so an interrupted run is simply run again.
            _first_schema(db)
            conn.execute("PRAGMA user_version = 1")
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) < migration.version:  # another process may have run it
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _first_schema(db: sqlite_utils.Database) -> None:
    node_fk = [("node_key", "nodes", "node_key")]
    db["nodes"].create({"node_key": str, "site": str, "node": str, "state": str,
                        "status_time": float, "status": str},  # status: NodeStatus JSON
                       pk="node_key", not_null={"site", "node"}, if_not_exists=True)  # fmt: skip
    db["ingest_positions"].create({"node_key": str, "last_seq": int, "last_received": float,
                                   "batches": int}, pk="node_key", foreign_keys=node_fk,
                                  if_not_exists=True)  # fmt: skip
    db["node_tracks"].create({"node_key": str, "track_id": int, "global_id": int, "time": float,
                              "lat": float, "lon": float, "status": str, "target_class": str,
                              "track": str},  # track: the wire Track as JSON
                             pk=("node_key", "track_id"), foreign_keys=node_fk,
                             not_null={"node_key", "track_id", "time", "track"},
                             if_not_exists=True)  # fmt: skip
    db["fused_tracks"].create({"global_id": int, "time": float, "lat": float, "lon": float,
                               "alt": float, "e": float, "n": float, "ve": float, "vn": float,
                               "covariance": str, "target_class": str, "status": str,
                               "quality": float, "sources": str},
                              pk="global_id", not_null=FUSED_COLUMNS,
                              if_not_exists=True)  # fmt: skip
    # Current tracks in a box: a B-tree on (lat, lon) scans the latitude band and tests the
    # longitude inside the index. An R*Tree was measured against it (2k to 200k tracks):
    # no faster for these point boxes, and each moved track cost five times as much to write.
    db["fused_tracks"].create_index(["lat", "lon"], if_not_exists=True)
    db["alerts"].create({"alert_id": str, "site": str, "node": str, "alert_type": str,
                         "severity": str, "state": str, "first_time": float, "time": float,
                         "acknowledged_by": str, "acknowledged_at": float, "alert": str},
                        pk="alert_id", if_not_exists=True)  # fmt: skip
    db["alerts"].create_index(["state", "time"], if_not_exists=True)
    db["dead_letters"].create({"id": int, "received": float, "node_key": str, "topic": str,
                               "reason": str, "payload": bytes}, pk="id",
                              not_null={"received", "topic", "reason"},
                              if_not_exists=True)  # fmt: skip
    db["dead_letters"].create_index(["received"], if_not_exists=True)
    db["audit_log"].create({"seq": int, "time": float, "actor": str, "action": str,
                            "details": str, "prev_hash": str, "hash": str}, pk="seq",
                           not_null={"time", "actor", "action", "details", "prev_hash", "hash"},
                           if_not_exists=True)  # fmt: skip
    db.conn.executescript(_SQLITE_EXTRAS)
