"""HQ's embedded store backend: SQLite through sqlite-utils (the interface is hq/store.py).

Writes go through one writer connection behind a lock. `commit_ingest` writes
everything one ingested message changes in ONE transaction, including the
(node, seq) that marks a batch as seen: after a crash a batch is either
wholly there and known as seen, or absent and still to be ingested when the
edge sends it again. Each reading thread gets its own read-only connection;
WAL lets it read a consistent snapshot while the writer commits.

Durability: `synchronous=FULL` by default. A kill -9 loses nothing in WAL
mode with NORMAL either, but a power cut could then drop the last commits,
and those batches were already acknowledged to the broker, so no edge would
send them again. FULL costs one fsync per batch (see bench/hq_store.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple

import sqlite_utils

from hq.audit import AuditEntry, AuditVerification, ChainStart, next_entry, verify_chain
from hq.store import (
    AUDIT_MIN_DAYS,
    DAY,
    SCHEMA_VERSION,
    AlertRecord,
    AlertState,
    BBox,
    DeadLetter,
    FusedTrack,
    HistoryPoint,
    IngestBatch,
    NodeRecord,
    NodeTrack,
    PurgeResult,
    StoreStats,
    node_key,
)
from wire.messages import Alert, NodeStatus, TargetClass, Track, TrackStatus


class SqliteStore:
    """The embedded backend: one SQLite file in WAL mode.

    `read_only=True` opens an existing file without changing it (no schema
    creation, no writer), which is what audit-verify needs: a check must not
    repair what it checks.
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
        if not read_only:
            self._writer = _open_writer(self.path, synchronous)
            _create_schema(self._writer)

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        if self._writer is not None:
            with self._write_lock:
                self._writer.conn.close()

    # -- writes ---------------------------------------------------------------------------

    def commit_ingest(self, batch: IngestBatch) -> bool:
        with self._transaction() as conn:
            if batch.seq is not None and _seen(conn, batch.node_key, batch.seq):
                return False
            _ensure_nodes(conn, _node_keys(batch))
            if batch.seq is not None:
                _record_seq(conn, batch.node_key, batch.seq, batch.received)
            conn.executemany(_NODE_STATUS_SQL, map(_status_row, batch.statuses))
            conn.executemany(_NODE_TRACK_SQL, map(_node_track_row, batch.node_tracks))
            conn.executemany(_FUSED_SQL, map(_fused_row, batch.fused_tracks))
            conn.executemany(_POINT_SQL, map(_point_row, batch.history))
            conn.executemany(_ALERT_SQL, map(_alert_row, batch.alerts))
            conn.executemany(_DEAD_LETTER_SQL, map(_dead_letter_row, batch.dead_letters))
        return True

    def acknowledge_alert(self, alert_id: str, who: str, when: float) -> bool:
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?, "
                "acknowledged_at = ? WHERE alert_id = ? AND state = 'open'", [who, when, alert_id]
            ).rowcount  # fmt: skip
            if changed:
                _append_audit(conn, who, "alert.acknowledge", {"alert_id": alert_id}, when)
        return changed > 0

    def append_audit(self, actor: str, action: str, details: Mapping[str, Any],
                     when: float | None = None) -> AuditEntry:  # fmt: skip
        when = time.time() if when is None else when
        with self._transaction() as conn:
            return _append_audit(conn, actor, action, details, when)

    def purge(self, now: float, history_days: float, dead_letter_days: float,
              audit_days: float | None = None) -> PurgeResult:  # fmt: skip
        _check_retention(history_days, dead_letter_days, audit_days)
        history_cut = now - history_days * DAY
        with self._transaction() as conn:
            deleted = {name: conn.execute(sql, [history_cut]).rowcount
                       for name, sql in _HISTORY_PURGES.items()}  # fmt: skip
            deleted["dead_letters"] = conn.execute(
                "DELETE FROM dead_letters WHERE received < ?", [now - dead_letter_days * DAY]
            ).rowcount  # fmt: skip
            cut = _NO_CUT if audit_days is None else _cut_audit(conn, now - audit_days * DAY)
            result = PurgeResult(**deleted, audit_rows=cut.rows, audit_cut_seq=cut.seq)
            # The purge is itself audited; a cut also names where the chain now starts.
            details = {**asdict(result), "history_days": history_days,
                       "dead_letter_days": dead_letter_days, "audit_days": audit_days}  # fmt: skip
            if cut.hash is not None:
                details["audit_cut_hash"] = cut.hash
            _append_audit(conn, "system", "store.purge", details, now)
        return result

    # -- reads ----------------------------------------------------------------------------

    def already_seen(self, node_key: str, seq: int) -> bool:
        # A cheap early answer for ingest; commit_ingest checks again inside its transaction.
        return _seen(self._reader(), node_key, seq)

    def max_global_id(self) -> int:
        """The highest global id stored (0 when none): fusion numbers on from there."""
        conn = self._reader()
        current = conn.execute("SELECT COALESCE(MAX(global_id), 0) FROM fused_tracks").fetchone()
        history = conn.execute("SELECT COALESCE(MAX(global_id), 0) FROM track_points").fetchone()
        return int(max(current[0], history[0]))

    def current_tracks(self, bbox: BBox | None = None, target_class: TargetClass | None = None,
                       status: TrackStatus | None = None) -> list[FusedTrack]:  # fmt: skip
        sql = f"SELECT {', '.join('t.' + c for c in _FUSED_COLUMNS)} FROM fused_tracks t"
        where, params = [], []
        if bbox is not None:
            where.append("t.lat BETWEEN ? AND ? AND t.lon BETWEEN ? AND ?")
            params += [bbox.south, bbox.north, bbox.west, bbox.east]
        if target_class is not None:
            where.append("t.target_class = ?")
            params.append(str(target_class))
        if status is not None:
            where.append("t.status = ?")
            params.append(str(status))
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._reader().execute(sql + " ORDER BY t.global_id", params)
        return [_fused_from_row(row) for row in rows]

    def track_history(self, global_id: int, t0: float, t1: float,
                      max_points: int | None = None) -> list[HistoryPoint]:  # fmt: skip
        if max_points is None:
            rows = self._reader().execute(_HISTORY_SQL, [global_id, t0, t1])
        elif max_points < 2:
            raise ValueError("max_points must be at least 2 (the first and the last point)")
        else:
            params = {"gid": global_id, "t0": t0, "t1": t1, "m": max_points}
            rows = self._reader().execute(_DECIMATED_HISTORY_SQL, params)
        return [HistoryPoint(*row) for row in rows]

    def node_tracks(self, node_key: str | None = None) -> list[NodeTrack]:
        sql, params = "SELECT node_key, track, global_id FROM node_tracks", []
        if node_key is not None:
            sql, params = sql + " WHERE node_key = ?", [node_key]
        rows = self._reader().execute(sql + " ORDER BY node_key, track_id", params)
        return [NodeTrack(key, Track.model_validate_json(track), gid) for key, track, gid in rows]

    def nodes(self) -> list[NodeRecord]:
        rows = self._reader().execute(
            "SELECT n.node_key, n.status, p.last_seq, p.last_received, COALESCE(p.batches, 0) "
            "FROM nodes n LEFT JOIN ingest_positions p USING (node_key) ORDER BY n.node_key"
        )  # fmt: skip
        return [NodeRecord(key, NodeStatus.model_validate_json(status) if status else None, *rest)
                for key, status, *rest in rows]  # fmt: skip

    def alerts(self, state: AlertState | None = None, since: float | None = None,
               limit: int = 100) -> list[AlertRecord]:  # fmt: skip
        where, params = _optional_filters(("state = ?", state), ("time >= ?", since))
        rows = self._reader().execute(
            "SELECT alert, state, first_time, acknowledged_by, acknowledged_at FROM alerts"
            f"{where} ORDER BY time DESC LIMIT ?", [*params, limit]
        )  # fmt: skip
        return [AlertRecord(Alert.model_validate_json(alert), *rest) for alert, *rest in rows]

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]:
        where, params = _optional_filters(("received >= ?", since))
        rows = self._reader().execute(
            "SELECT received, topic, reason, payload, node_key, id FROM dead_letters"
            f"{where} ORDER BY received DESC LIMIT ?", [*params, limit]
        )  # fmt: skip
        return [DeadLetter(*row) for row in rows]

    def audit_log(self, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        rows = self._reader().execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > ? "
                                      "ORDER BY seq LIMIT ?", [after_seq, limit])  # fmt: skip
        return [AuditEntry(*row) for row in rows]

    def verify_audit(self, anchor: str | None = None) -> AuditVerification:
        with self._snapshot() as conn:
            start = _chain_start(conn)
            rows = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY seq")
            return verify_chain((AuditEntry(*row) for row in rows), start, anchor)

    def stats(self) -> StoreStats:
        with self._snapshot() as conn:
            rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in _TABLES}
            pages = {p: conn.execute(f"PRAGMA {p}").fetchone()[0]
                     for p in ("page_size", "page_count", "freelist_count")}  # fmt: skip
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        size = sum(f.stat().st_size for f in files if f.exists())
        return StoreStats(rows, size, pages)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._writer is None:
            raise PermissionError(f"{self.path} is open read-only")
        with self._write_lock:
            conn = self._writer.conn
            # IMMEDIATE takes the write lock up front, so a read-then-write inside (the
            # seen check, the audit head) cannot race another process's writer.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

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

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one state of the database."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")


# -- schema -------------------------------------------------------------------------------

_TABLES = ("nodes", "ingest_positions", "seen_batches", "node_tracks", "fused_tracks",
           "track_points", "alerts", "dead_letters", "audit_log")  # fmt: skip

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


def _open_writer(path: Path, synchronous: str) -> sqlite_utils.Database:
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


def _create_schema(db: sqlite_utils.Database) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"{db.conn} has schema {version}; this code knows {SCHEMA_VERSION}")
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
                              pk="global_id", not_null=_FUSED_COLUMNS,
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
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# -- rows -----------------------------------------------------------------------------------

_FUSED_COLUMNS = ("global_id", "time", "lat", "lon", "alt", "e", "n", "ve", "vn", "covariance",
                  "target_class", "status", "quality", "sources")  # fmt: skip
_POINT_COLUMNS = ("global_id", "time", "lat", "lon", "e", "n", "ve", "vn", "var_e", "var_n",
                  "cov_en")  # fmt: skip
_AUDIT_COLUMNS = "seq, time, actor, action, details, prev_hash, hash"


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], guard: str,
                keep: Sequence[str] = ()) -> str:  # fmt: skip
    """Insert, or update the stored row unless it is newer (by `guard`) than the incoming one:
    batches from an edge's backlog arrive after fresher ones and must not roll state back."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in (*key, *keep))
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
            f" WHERE {table}.{guard} IS NULL OR excluded.{guard} >= {table}.{guard}")  # fmt: skip


_NODE_STATUS_SQL = _upsert_sql("nodes", ("node_key", "site", "node", "state", "status_time",
                                         "status"), ["node_key"], guard="status_time")  # fmt: skip
_NODE_TRACK_SQL = _upsert_sql("node_tracks", ("node_key", "track_id", "global_id", "time", "lat",
                                              "lon", "status", "target_class", "track"),
                              ["node_key", "track_id"], guard="time")  # fmt: skip
_FUSED_SQL = _upsert_sql("fused_tracks", _FUSED_COLUMNS, ["global_id"], guard="time")
_ALERT_SQL = _upsert_sql("alerts", ("alert_id", "site", "node", "alert_type", "severity",
                                    "state", "first_time", "time", "alert"), ["alert_id"],
                         guard="time", keep=("state", "first_time"))  # fmt: skip
# A point sent twice (a resent batch after a lost seq record cannot happen, but fusion may
# re-emit a time) replaces itself rather than failing the batch.
_POINT_SQL = (f"INSERT OR REPLACE INTO track_points ({', '.join(_POINT_COLUMNS)}) "
              f"VALUES ({', '.join('?' * len(_POINT_COLUMNS))})")  # fmt: skip
_DEAD_LETTER_SQL = ("INSERT INTO dead_letters (received, topic, reason, payload, node_key) "
                    "VALUES (?, ?, ?, ?, ?)")  # fmt: skip

_point_row = attrgetter(*_POINT_COLUMNS)
_dead_letter_row = attrgetter("received", "topic", "reason", "payload", "node_key")


def _status_row(status: NodeStatus) -> tuple:
    return (node_key(status.site, status.node), status.site, status.node, status.state,
            status.time, status.model_dump_json())  # fmt: skip


def _node_track_row(entry: NodeTrack) -> tuple:
    t = entry.track
    return (entry.node_key, t.track_id, entry.global_id, t.time, t.lat, t.lon, str(t.status),
            str(t.target_class), t.model_dump_json())  # fmt: skip


def _fused_row(t: FusedTrack) -> tuple:
    return (t.global_id, t.time, t.lat, t.lon, t.alt, *t.state, json.dumps(list(t.covariance)),
            str(t.target_class), str(t.status), t.quality, json.dumps(list(t.sources)))  # fmt: skip


def _fused_from_row(row: Sequence) -> FusedTrack:
    gid, t, lat, lon, alt, e, n, ve, vn, cov, cls, status, quality, sources = row
    return FusedTrack(gid, t, lat, lon, alt, (e, n, ve, vn), tuple(json.loads(cov)),
                      TargetClass(cls), TrackStatus(status), quality,
                      tuple(json.loads(sources)))  # fmt: skip


def _alert_row(alert: Alert) -> tuple:
    return (alert.alert_id, alert.site, alert.node, alert.alert_type, alert.severity, "open",
            alert.time, alert.time, alert.model_dump_json())  # fmt: skip


# -- statements -----------------------------------------------------------------------------

_HISTORY_SQL = (f"SELECT {', '.join(_POINT_COLUMNS)} FROM track_points "
                "WHERE global_id = ? AND time BETWEEN ? AND ? ORDER BY time")  # fmt: skip

# Every k-th point and the last, k = ceil((n - 1) / (m - 1)): at most m points, the first
# and last always among them. By index, not time: points come at the tracker's cadence.
_DECIMATED_HISTORY_SQL = f"""
WITH span AS (
    SELECT {", ".join(_POINT_COLUMNS)}, ROW_NUMBER() OVER (ORDER BY time) AS rn,
           COUNT(*) OVER () AS total
    FROM track_points WHERE global_id = :gid AND time BETWEEN :t0 AND :t1)
SELECT {", ".join(_POINT_COLUMNS)} FROM span
WHERE (rn - 1) % MAX(1, (total + :m - 3) / (:m - 1)) = 0 OR rn = total
ORDER BY time
"""

# Retention of everything tied to track history. Seen batches go with it: an edge's outbox
# is bounded (hours to a day of batches), far shorter than any history retention.
_HISTORY_PURGES = {
    "history_points": "DELETE FROM track_points WHERE time < ?",
    "fused_tracks": "DELETE FROM fused_tracks WHERE time < ?",
    "node_tracks": "DELETE FROM node_tracks WHERE time < ?",
    "seen_batches": "DELETE FROM seen_batches WHERE received < ?",
}


def _seen(conn: sqlite3.Connection, key: str, seq: int) -> bool:
    sql = "SELECT 1 FROM seen_batches WHERE node_key = ? AND seq = ?"
    return conn.execute(sql, [key, seq]).fetchone() is not None


def _node_keys(batch: IngestBatch) -> set[str]:
    keys = {node_key(s.site, s.node) for s in batch.statuses}
    keys.update(t.node_key for t in batch.node_tracks)
    if batch.node_key is not None:
        keys.add(batch.node_key)
    return keys


def _ensure_nodes(conn: sqlite3.Connection, keys: set[str]) -> None:
    """A row per node before anything refers to it (a batch may beat the node's status)."""
    conn.executemany("INSERT INTO nodes (node_key, site, node) VALUES (?, ?, ?) "
                     "ON CONFLICT (node_key) DO NOTHING",
                     [(key, *key.partition("/")[::2]) for key in sorted(keys)])  # fmt: skip


def _record_seq(conn: sqlite3.Connection, key: str, seq: int, received: float) -> None:
    conn.execute("INSERT INTO seen_batches (node_key, seq, received) VALUES (?, ?, ?)",
                 [key, seq, received])  # fmt: skip
    conn.execute(
        "INSERT INTO ingest_positions (node_key, last_seq, last_received, batches) "
        "VALUES (?, ?, ?, 1) ON CONFLICT (node_key) DO UPDATE SET "
        "last_seq = MAX(last_seq, excluded.last_seq), last_received = excluded.last_received, "
        "batches = batches + 1", [key, seq, received]
    )  # fmt: skip


def _optional_filters(*conditions: tuple[str, Any]) -> tuple[str, list]:
    """' WHERE a AND b' over the conditions whose value is given, and those values."""
    given = [(sql, value) for sql, value in conditions if value is not None]
    where = " AND ".join(sql for sql, _ in given)
    return (f" WHERE {where}" if where else ""), [value for _, value in given]


def _check_retention(history_days: float, dead_letter_days: float,
                     audit_days: float | None) -> None:  # fmt: skip
    if history_days <= 0 or dead_letter_days <= 0:
        raise ValueError("retention periods must be positive")
    if audit_days is not None and audit_days < AUDIT_MIN_DAYS:
        raise ValueError(f"the audit log is kept at least {AUDIT_MIN_DAYS} days; "
                         f"refusing to purge rows after {audit_days} days")  # fmt: skip


# -- audit chain on SQLite -------------------------------------------------------------------


def _append_audit(conn: sqlite3.Connection, actor: str, action: str,
                  details: Mapping[str, Any], when: float) -> AuditEntry:  # fmt: skip
    head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    entry = next_entry(ChainStart(head[0] + 1, head[1]) if head else ChainStart(),
                       when, actor, action, details)  # fmt: skip
    conn.execute(f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 [entry.seq, entry.time, entry.actor, entry.action, entry.details,
                  entry.prev_hash, entry.hash])  # fmt: skip
    return entry


class _AuditCut(NamedTuple):
    seq: int | None  # the last seq deleted
    rows: int
    hash: str | None  # that row's hash: the next row's previous-hash


_NO_CUT = _AuditCut(None, 0, None)


def _cut_audit(conn: sqlite3.Connection, cutoff: float) -> _AuditCut:
    """Delete the oldest rows from before `cutoff`.

    Only a prefix goes, so what stays is still one chain; the newest row always stays,
    so the chain keeps a head to continue from.
    """
    oldest, newest = conn.execute("SELECT MIN(seq), MAX(seq) FROM audit_log").fetchone()
    young = conn.execute("SELECT MIN(seq) FROM audit_log WHERE time >= ?", [cutoff]).fetchone()[0]
    if newest is None:
        return _NO_CUT
    through = min(newest - 1, newest if young is None else young - 1)
    if through < oldest:
        return _NO_CUT
    cut_hash = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", [through]).fetchone()[0]
    deleted = conn.execute("DELETE FROM audit_log WHERE seq <= ?", [through]).rowcount
    return _AuditCut(through, deleted, cut_hash)


def _chain_start(conn: sqlite3.Connection) -> ChainStart:
    """Where the chain must start: after the newest retention cut, or at GENESIS."""
    rows = conn.execute("SELECT details FROM audit_log WHERE action = 'store.purge' "
                        "ORDER BY seq DESC")  # fmt: skip
    for (text,) in rows:
        try:
            details = json.loads(text)
            if details.get("audit_cut_seq") is not None:
                return ChainStart(details["audit_cut_seq"] + 1, details["audit_cut_hash"])
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a mangled row; the walk reports it
    return ChainStart()

