"""HQ's embedded store backend: SQLite through sqlite-utils (the interface is
hq/store/interface.py).

Writes go through one writer connection behind a lock. `commit_ingest_many`
writes everything a group of ingested messages changes in ONE transaction,
including the (node, seq) that marks each batch as seen: after a crash a
batch is either wholly there and known as seen, or absent and still to be
ingested when the edge sends it again. Each reading thread gets its own
read-only connection; WAL lets it read a consistent snapshot while the writer
commits.

Durability: `synchronous=FULL` by default. A kill -9 loses nothing in WAL
mode with NORMAL either, but a power cut could then drop the last commits,
and those batches were already acknowledged to the broker, so no edge would
send them again. FULL costs one fsync per commit, shared by a whole group.

Beside this file: the write path (write.py), the schema (schema.py) and the
audit chain's rows (audit.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from hq.audit import AuditEntry, AuditVerification, verify_chain
from hq.store.interface import AUDIT_MIN_DAYS, DAY, load_json
from hq.store.records import (
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
)
from hq.store.sqlite.audit import AUDIT_COLUMNS, NO_CUT, append_audit, chain_start, cut_audit
from hq.store.sqlite.schema import TABLES, create_schema, open_writer
from hq.store.sqlite.write import FUSED_COLUMNS, POINT_COLUMNS, seen, unseen, write_batches
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
            self._writer = open_writer(self.path, synchronous)
            create_schema(self._writer)

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
        return self.commit_ingest_many([batch])[0]

    def commit_ingest_many(self, batches: Sequence[IngestBatch]) -> list[bool]:
        with self._transaction() as conn:
            fresh = unseen(conn, batches)
            write_batches(conn, [b for b, new in zip(batches, fresh, strict=True) if new])
        return fresh

    def acknowledge_alert(self, alert_id: str, who: str, when: float) -> bool:
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?, "
                "acknowledged_at = ? WHERE alert_id = ? AND state = 'open'", [who, when, alert_id]
            ).rowcount  # fmt: skip
            if changed:
                append_audit(conn, who, "alert.acknowledge", {"alert_id": alert_id}, when)
        return changed > 0

    def append_audit(self, actor: str, action: str, details: Mapping[str, Any],
                     when: float | None = None) -> AuditEntry:  # fmt: skip
        when = time.time() if when is None else when
        with self._transaction() as conn:
            return append_audit(conn, actor, action, details, when)

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
            cut = NO_CUT if audit_days is None else cut_audit(conn, now - audit_days * DAY)
            result = PurgeResult(**deleted, audit_rows=cut.rows, audit_cut_seq=cut.seq)
            # The purge is itself audited; a cut also names where the chain now starts.
            details = {**asdict(result), "history_days": history_days,
                       "dead_letter_days": dead_letter_days, "audit_days": audit_days}  # fmt: skip
            if cut.hash is not None:
                details["audit_cut_hash"] = cut.hash
            append_audit(conn, "system", "store.purge", details, now)
        return result

    # -- reads ----------------------------------------------------------------------------

    def already_seen(self, node_key: str, seq: int) -> bool:
        # A cheap early answer for ingest; commit_ingest checks again inside its transaction.
        return seen(self._reader(), node_key, seq)

    def max_global_id(self) -> int:
        """The highest global id stored (0 when none): fusion numbers on from there."""
        conn = self._reader()
        current = conn.execute("SELECT COALESCE(MAX(global_id), 0) FROM fused_tracks").fetchone()
        history = conn.execute("SELECT COALESCE(MAX(global_id), 0) FROM track_points").fetchone()
        return int(max(current[0], history[0]))

    def current_tracks(self, bbox: BBox | None = None, target_class: TargetClass | None = None,
                       status: TrackStatus | None = None) -> list[FusedTrack]:  # fmt: skip
        sql, params = current_tracks_query(bbox, target_class, status)
        return [fused_from_row(row) for row in self._reader().execute(sql, params)]

    def current_track_rows(self, bbox: BBox | None = None,
                           status: TrackStatus | None = None) -> list[tuple]:  # fmt: skip
        sql, params = current_tracks_query(bbox, status=status)
        return self._reader().execute(sql, params).fetchall()

    def fused_track(self, global_id: int) -> FusedTrack | None:
        row = self._reader().execute(f"SELECT {', '.join(FUSED_COLUMNS)} FROM fused_tracks "
                                     "WHERE global_id = ?", [global_id]).fetchone()  # fmt: skip
        return None if row is None else fused_from_row(row)

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

    def node_tracks_of(self, global_id: int) -> list[NodeTrack]:
        rows = self._reader().execute("SELECT node_key, track FROM node_tracks WHERE "
                                      "global_id = ? ORDER BY node_key, track_id",
                                      [global_id])  # fmt: skip
        return [NodeTrack(key, Track.model_validate_json(track), global_id) for key, track in rows]

    def nodes(self) -> list[NodeRecord]:
        rows = self._reader().execute(
            "SELECT n.node_key, n.status, p.last_seq, p.last_received, COALESCE(p.batches, 0) "
            "FROM nodes n LEFT JOIN ingest_positions p USING (node_key) ORDER BY n.node_key"
        )  # fmt: skip
        return [NodeRecord(key, NodeStatus.model_validate_json(status) if status else None, *rest)
                for key, status, *rest in rows]  # fmt: skip

    def alerts(self, state: AlertState | None = None, since: float | None = None,
               limit: int = 100, alert_type: str | None = None) -> list[AlertRecord]:  # fmt: skip
        return self._alerts_where(("state = ?", state), ("time >= ?", since),
                                  ("alert_type = ?", alert_type), limit=limit)  # fmt: skip

    def _alerts_where(self, *conditions: tuple[str, Any], limit: int) -> list[AlertRecord]:
        where, params = _optional_filters(*conditions)
        rows = self._reader().execute(
            "SELECT alert, state, first_time, acknowledged_by, acknowledged_at FROM alerts"
            f"{where} ORDER BY time DESC LIMIT ?", [*params, limit]
        )  # fmt: skip
        return [AlertRecord(Alert.model_validate_json(alert), *rest) for alert, *rest in rows]

    def alerts_by_id(self, alert_ids: Sequence[str], since: float | None = None,
                     limit: int = 100) -> list[AlertRecord]:  # fmt: skip
        return self._alerts_where(("alert_id IN (SELECT value FROM json_each(?))",
                                   json.dumps(list(alert_ids))), ("time >= ?", since),
                                  limit=limit)  # fmt: skip

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]:
        where, params = _optional_filters(("received >= ?", since))
        rows = self._reader().execute(
            "SELECT received, topic, reason, payload, node_key, id FROM dead_letters"
            f"{where} ORDER BY received DESC LIMIT ?", [*params, limit]
        )  # fmt: skip
        return [DeadLetter(*row) for row in rows]

    def audit_log(self, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        rows = self._reader().execute(f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? "
                                      "ORDER BY seq LIMIT ?", [after_seq, limit])  # fmt: skip
        return [AuditEntry(*row) for row in rows]

    def verify_audit(self, anchor: str | None = None) -> AuditVerification:
        with self._snapshot() as conn:
            start = chain_start(conn)
            rows = conn.execute(f"SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq")
            return verify_chain((AuditEntry(*row) for row in rows), start, anchor)

    def stats(self) -> StoreStats:
        with self._snapshot() as conn:
            rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
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


# -- rows -----------------------------------------------------------------------------------

def current_tracks_query(bbox: BBox | None = None, target_class: TargetClass | None = None,
                         status: TrackStatus | None = None) -> tuple[str, list]:  # fmt: skip
    """The SELECT of current fused tracks (FUSED_COLUMNS, by global id) and its parameters."""
    where, params = [], []
    if bbox is not None:
        where.append("lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?")
        params += [bbox.south, bbox.north, bbox.west, bbox.east]
    for column, value in (("target_class", target_class), ("status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    sql = f"SELECT {', '.join(FUSED_COLUMNS)} FROM fused_tracks"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY global_id", params


def fused_from_row(row: Sequence) -> FusedTrack:
    """A fused_tracks row (FUSED_COLUMNS order) as the record it was written from."""
    gid, t, lat, lon, alt, e, n, ve, vn, cov, cls, status, quality, sources = row
    return FusedTrack(gid, t, lat, lon, alt, (e, n, ve, vn), tuple(load_json(cov)),
                      _CLASSES.get(cls) or TargetClass(cls),
                      _STATUSES.get(status) or TrackStatus(status), quality,
                      tuple(load_json(sources)))  # fmt: skip


# Enum members by value: TargetClass(value) costs a microsecond a call, a dict a tenth of
# that; a value missing here still goes through the enum, which refuses it as before.
_CLASSES = {c.value: c for c in TargetClass}
_STATUSES = {s.value: s for s in TrackStatus}


# -- statements -----------------------------------------------------------------------------

_HISTORY_SQL = (f"SELECT {', '.join(POINT_COLUMNS)} FROM track_points "
                "WHERE global_id = ? AND time BETWEEN ? AND ? ORDER BY time")  # fmt: skip

# Every k-th point and the last, k = ceil((n - 1) / (m - 1)): at most m points, the first
# and last always among them. By index, not time: points come at the tracker's cadence.
_DECIMATED_HISTORY_SQL = f"""
WITH span AS (
    SELECT {", ".join(POINT_COLUMNS)}, ROW_NUMBER() OVER (ORDER BY time) AS rn,
           COUNT(*) OVER () AS total
    FROM track_points WHERE global_id = :gid AND time BETWEEN :t0 AND :t1)
SELECT {", ".join(POINT_COLUMNS)} FROM span
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
