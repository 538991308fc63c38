"""`SqlStore`: the Store written once over `Db`; a backend adds its connections, its
schema and its ingest write path.

A backend implements:

- `_read()`: a Db for one or a few reads (each its own statement's view);
- `_snapshot()`: a Db whose reads all see one state of the database;
- `_transaction()`: a Db inside a write transaction, committed on leaving;
- `_write_ingest(db, batches)`: the ingest write path, inside the transaction;
- `_changes_window(db, cursor)`: which rows changed after a cursor, and the next one;
- `stats()` and `close()`.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any

from hq.audit import AuditEntry, AuditVerification
from hq.store.interface import AUDIT_MIN_DAYS, DAY
from hq.store.records import (
    AlertRecord,
    AlertState,
    ApiToken,
    Area,
    BBox,
    DeadLetter,
    FusedTrack,
    FusedTracks,
    HistoryPoint,
    HistoryPoints,
    IngestBatch,
    LatLon,
    NodeRecord,
    NodeTrack,
    Place,
    PurgeResult,
    StoreChanges,
    TrackLabel,
)
from hq.store.sql import audit, drones, operator, reads
from hq.store.sql.db import Db
from wire.messages import TargetClass, TrackStatus, VehicleTelemetry

# Retention of everything tied to track history. Seen batches go with it: an edge's outbox
# is bounded (hours to a day of batches), far shorter than any history retention.
_HISTORY_PURGES = {
    "history_points": "DELETE FROM track_points WHERE time < ?",
    "fused_tracks": "DELETE FROM fused_tracks WHERE time < ?",
    "node_tracks": "DELETE FROM node_tracks WHERE time < ?",
    "seen_batches": "DELETE FROM seen_batches WHERE received < ?",
    **drones.PURGES,
}


class SqlStore(ABC):
    @abstractmethod
    def _read(self) -> AbstractContextManager[Db]: ...

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[Db]: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Db]: ...

    @abstractmethod
    def _write_ingest(self, db: Db, batches: Sequence[IngestBatch]) -> list[bool]: ...

    @abstractmethod
    def _changes_window(self, db: Db, cursor: int) -> tuple[str, int, int]:
        """(a condition with one `?` on the `changed` column, its value, the next cursor)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- ingest ---------------------------------------------------------------------------

    def commit_ingest(self, batch: IngestBatch) -> bool:
        return self.commit_ingest_many([batch])[0]

    def commit_ingest_many(self, batches: Sequence[IngestBatch]) -> list[bool]:
        with self._transaction() as db:
            fresh = self._write_ingest(db, batches)
            drones.write_telemetry(db, [m for b, new in zip(batches, fresh, strict=True)
                                        if new for m in b.telemetry])  # fmt: skip
            return fresh

    def already_seen(self, node_key: str, seq: int) -> bool:
        # A cheap early answer for ingest; commit_ingest checks again inside its transaction.
        with self._read() as db:
            return reads.already_seen(db, node_key, seq)

    # -- fused tracks and history ---------------------------------------------------------

    def max_global_id(self) -> int:
        with self._read() as db:
            return reads.max_global_id(db)

    def current_tracks(self, bbox: BBox | None = None, target_class: TargetClass | None = None,
                       status: TrackStatus | None = None) -> list[FusedTrack]:  # fmt: skip
        sql, params = reads.current_tracks_query(bbox, target_class, status)
        with self._read() as db:
            return [reads.fused_from_row(row) for row in db.execute(sql, params)]

    def current_track_table(self, bbox: BBox | None = None,
                            status: TrackStatus | None = None) -> FusedTracks:  # fmt: skip
        sql, params = reads.current_tracks_query(bbox, status=status)
        with self._read() as db:
            return reads.fused_table(db.execute(sql, params))

    def fused_track(self, global_id: int) -> FusedTrack | None:
        with self._read() as db:
            return reads.fused_track(db, global_id)

    def track_history(self, global_id: int, t0: float, t1: float,
                      max_points: int | None = None) -> list[HistoryPoint]:  # fmt: skip
        with self._read() as db:
            return reads.track_history(db, global_id, t0, t1, max_points)

    def history_in_box(self, bbox: BBox, t0: float, t1: float) -> HistoryPoints:
        with self._read() as db:
            return reads.history_in_box(db, bbox, t0, t1)

    def changes_since(self, cursor: int = 0) -> StoreChanges:
        """Every fused track and alert changed after `cursor` (0: all of them), read in one
        snapshot, and the cursor to pass next time."""
        with self._snapshot() as db:
            changed, value, following = self._changes_window(db, cursor)
            sql, params = reads.current_tracks_query(where=[(changed, (value,))])
            tracks = reads.fused_table(db.execute(sql, params))
            alerts = reads.alerts_where(db, (changed, value), limit=2**62)
        return StoreChanges(following, tracks, alerts)

    # -- our own drones -------------------------------------------------------------------

    def drones(self) -> list[VehicleTelemetry]:
        with self._read() as db:
            return drones.drones(db)

    def drone_history(self, node_key: str, sysid: int, t0: float, t1: float,
                      max_points: int | None = None) -> list[VehicleTelemetry]:  # fmt: skip
        with self._read() as db:
            return drones.drone_history(db, node_key, sysid, t0, t1, max_points)

    # -- nodes, alerts, dead letters ------------------------------------------------------

    def node_tracks(self, node_key: str | None = None) -> list[NodeTrack]:
        with self._read() as db:
            return reads.node_tracks(db, node_key)

    def node_tracks_of(self, global_id: int) -> list[NodeTrack]:
        with self._read() as db:
            return reads.node_tracks_of(db, global_id)

    def nodes(self) -> list[NodeRecord]:
        with self._read() as db:
            return reads.nodes(db)

    def alerts(self, state: AlertState | None = None, since: float | None = None,
               limit: int = 100, alert_type: str | None = None) -> list[AlertRecord]:  # fmt: skip
        with self._read() as db:
            return reads.alerts_where(db, ("state = ?", state), ("time >= ?", since),
                                      ("alert_type = ?", alert_type), limit=limit)  # fmt: skip

    def alerts_by_id(self, alert_ids: Sequence[str], since: float | None = None,
                     limit: int = 100) -> list[AlertRecord]:  # fmt: skip
        with self._read() as db:
            return reads.alerts_where(db, (f"alert_id IN ({db.json_text_values})",
                                           json.dumps(list(alert_ids))),
                                      ("time >= ?", since), limit=limit)  # fmt: skip

    def alert_ids(self, state: AlertState) -> list[str]:
        with self._read() as db:
            return [row[0] for row in db.execute("SELECT alert_id FROM alerts WHERE state = ? "
                                                 "ORDER BY alert_id", [state])]  # fmt: skip

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]:
        with self._read() as db:
            return reads.dead_letters(db, since, limit)

    # -- the alert workflow ---------------------------------------------------------------

    def acknowledge_alert(self, alert_id: str, who: str, when: float) -> bool:
        with self._transaction() as db:
            return operator.acknowledge_alert(db, alert_id, who, when)

    def assign_alert(self, alert_id: str, assignee: str, who: str, when: float) -> bool:
        with self._transaction() as db:
            return operator.assign_alert(db, alert_id, assignee, who, when)

    def resolve_alert(self, alert_id: str, note: str, who: str, when: float) -> bool:
        with self._transaction() as db:
            return operator.resolve_alert(db, alert_id, note, who, when)

    # -- track labels ---------------------------------------------------------------------

    def label_track(self, global_id: int, affiliation: str | None, target_class: str | None,
                    who: str, when: float) -> TrackLabel | None:  # fmt: skip
        with self._transaction() as db:
            return operator.label_track(db, global_id, affiliation, target_class, who, when)

    def track_label(self, global_id: int) -> TrackLabel | None:
        with self._read() as db:
            return operator.track_label(db, global_id)

    def track_labels(self) -> dict[int, TrackLabel]:
        with self._read() as db:
            return operator.track_labels(db)

    # -- zones, the border, places --------------------------------------------------------

    def seed_geography(self, border: Sequence[LatLon], zones: Mapping[str, Sequence[LatLon]],
                       places: Sequence[Place], when: float) -> None:  # fmt: skip
        with self._transaction() as db:
            db.lock("areas")
            operator.seed_geography(db, border, dict(zones), places, when)

    def border(self) -> Area | None:
        with self._read() as db:
            found = operator.areas(db, "border")
        return found[0] if found else None

    def zones(self) -> list[Area]:
        with self._read() as db:
            return operator.areas(db, "zone")

    def zone(self, name: str) -> Area | None:
        with self._read() as db:
            found = operator.areas(db, "zone", name)
        return found[0] if found else None

    def put_zone(self, name: str, points: Sequence[LatLon], who: str, when: float,
                 create: bool) -> Area | None:  # fmt: skip
        with self._transaction() as db:
            return operator.put_zone(db, name, points, who, when, create)

    def put_border(self, points: Sequence[LatLon], who: str, when: float) -> Area:
        with self._transaction() as db:
            return operator.put_border(db, points, who, when)

    def places(self) -> list[Place]:
        with self._read() as db:
            return operator.places(db)

    def put_place(self, place: Place) -> Place:
        with self._transaction() as db:
            return operator.put_place(db, place)

    # -- API tokens -----------------------------------------------------------------------

    def add_token(self, token: ApiToken, secret_sha256: str, actor: str) -> None:
        with self._transaction() as db:
            operator.add_token(db, token, secret_sha256, actor)

    def revoke_tokens(self, name_or_id: str, actor: str, when: float) -> int:
        with self._transaction() as db:
            return operator.revoke_tokens(db, name_or_id, actor, when)

    def tokens(self) -> list[ApiToken]:
        with self._read() as db:
            return operator.tokens(db)

    def token(self, token_id: str) -> tuple[ApiToken, str] | None:
        with self._read() as db:
            return operator.token(db, token_id)

    # -- the audit log and retention ------------------------------------------------------

    def append_audit(self, actor: str, action: str, details: Mapping[str, Any],
                     when: float | None = None) -> AuditEntry:  # fmt: skip
        when = time.time() if when is None else when
        with self._transaction() as db:
            return audit.append_audit(db, actor, action, details, when)

    def audit_log(self, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        with self._read() as db:
            return audit.audit_log(db, after_seq, limit)

    def verify_audit(self, anchor: str | None = None) -> AuditVerification:
        with self._snapshot() as db:
            return audit.verify_audit(db, anchor)

    def purge(self, now: float, history_days: float, dead_letter_days: float,
              audit_days: float | None = None) -> PurgeResult:  # fmt: skip
        _check_retention(history_days, dead_letter_days, audit_days)
        history_cut = now - history_days * DAY
        with self._transaction() as db:
            deleted = {name: db.execute(sql, [history_cut]).rowcount
                       for name, sql in _HISTORY_PURGES.items()}  # fmt: skip
            deleted["dead_letters"] = db.execute(
                "DELETE FROM dead_letters WHERE received < ?", [now - dead_letter_days * DAY]
            ).rowcount  # fmt: skip
            cut = audit.NO_CUT if audit_days is None else audit.cut_audit(
                db, now - audit_days * DAY)  # fmt: skip
            result = PurgeResult(**deleted, audit_rows=cut.rows, audit_cut_seq=cut.seq)
            # The purge is itself audited; a cut also names where the chain now starts.
            details = {**asdict(result), "history_days": history_days,
                       "dead_letter_days": dead_letter_days, "audit_days": audit_days}  # fmt: skip
            if cut.hash is not None:
                details["audit_cut_hash"] = cut.hash
            audit.append_audit(db, "system", "store.purge", details, now)
        return result


def _check_retention(history_days: float, dead_letter_days: float,
                     audit_days: float | None) -> None:  # fmt: skip
    if history_days <= 0 or dead_letter_days <= 0:
        raise ValueError("retention periods must be positive")
    if audit_days is not None and audit_days < AUDIT_MIN_DAYS:
        raise ValueError(f"the audit log is kept at least {AUDIT_MIN_DAYS} days; "
                         f"refusing to purge rows after {audit_days} days")  # fmt: skip
