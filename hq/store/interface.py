"""The Store interface: everything ingest, fusion, alerts, TAK and the API ask of HQ's store.

All HQ state lives behind it: tracks, history, nodes, alerts and their workflow,
dead letters, the audit log, and what operators decided (API tokens, zones, the
border, places, track labels). Each operator action commits in one transaction
with its audit row. Nothing outside hq/store writes SQL: each backend is a folder
(sqlite/, postgresql/) over the SQL they share (sql/); `open_store` (hq/store/
__init__.py) picks one by URL. The audit log's hash chain is hq/audit.py.

Ready for HQ on several machines: de-duplication by (node, seq) and the newest
state per track are decided by the database in the write transaction, not by a
process's memory; `changes_since` is a cursor a live stream can follow from any
process; fused tracks and node tracks hold what fusion needs to start again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from hq.audit import AuditEntry, AuditVerification
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
    StoreStats,
    TrackLabel,
)
from wire.messages import TargetClass, TrackStatus, VehicleTelemetry

DAY = 86_400.0
AUDIT_MIN_DAYS = 183  # the audit log is kept at least six months


class Store(Protocol):
    def commit_ingest(self, batch: IngestBatch) -> bool:
        """Write `batch` in one transaction; False (nothing written) if its seq was seen."""

    def commit_ingest_many(self, batches: Sequence[IngestBatch]) -> list[bool]:
        """Write `batches` in ONE transaction, as if one after another: one commit (one
        fsync) for many messages. Per batch, False (it wrote nothing) where its seq was
        seen before or earlier in `batches`. All or nothing: an error writes none."""

    def already_seen(self, node_key: str, seq: int) -> bool: ...

    def max_global_id(self) -> int: ...

    def current_tracks(self, bbox: BBox | None = None, target_class: TargetClass | None = None,
                       status: TrackStatus | None = None) -> list[FusedTrack]: ...  # fmt: skip

    def track_history(self, global_id: int, t0: float, t1: float,
                      max_points: int | None = None) -> list[HistoryPoint]:  # fmt: skip
        """Points with t0 <= time <= t1 in time order; at most `max_points`, keeping the
        first and the last, when given."""

    def current_track_table(self, bbox: BBox | None = None,
                            status: TrackStatus | None = None) -> FusedTracks:  # fmt: skip
        """`current_tracks` as columns, by global id: for the API's track list (at 10,000
        tracks, making a FusedTrack of every row costs more than the query)."""

    def history_in_box(self, bbox: BBox, t0: float, t1: float) -> HistoryPoints:
        """Every track's points inside the box with t0 <= time <= t1, by track then time."""

    def changes_since(self, cursor: int = 0) -> StoreChanges:
        """The fused tracks and alerts changed after `cursor` (0: all), and the next cursor:
        what a live stream in any process follows. Across writers too: a row committed
        later than a cursor was taken is never missed (it may come twice)."""

    def fused_track(self, global_id: int) -> FusedTrack | None: ...

    def node_tracks(self, node_key: str | None = None) -> list[NodeTrack]: ...

    def node_tracks_of(self, global_id: int) -> list[NodeTrack]:
        """The node tracks that fusion put in this global track."""

    def nodes(self) -> list[NodeRecord]: ...

    def drones(self) -> list[VehicleTelemetry]:
        """Our own drones: each one's newest telemetry, by node then system id."""

    def drone_history(self, node_key: str, sysid: int, t0: float, t1: float,
                      max_points: int | None = None) -> list[VehicleTelemetry]:  # fmt: skip
        """One drone's telemetry with t0 <= time <= t1 in time order; at most `max_points`,
        keeping the first and the last, when given (as `track_history`)."""

    def alerts(self, state: AlertState | None = None, since: float | None = None,
               limit: int = 100, alert_type: str | None = None) -> list[AlertRecord]:
        """The newest alerts first, of one state and kind where given."""

    def alerts_by_id(self, alert_ids: Sequence[str], since: float | None = None,
                     limit: int = 100) -> list[AlertRecord]:  # fmt: skip
        """The alerts of these ids (those that exist), newest first."""

    def alert_ids(self, state: AlertState) -> list[str]: ...

    # -- operator actions: each in one transaction with its audit row --------------------

    def acknowledge_alert(self, alert_id: str, who: str, when: float) -> bool:
        """Mark an open alert acknowledged, with its audit row; False if none is open."""

    def assign_alert(self, alert_id: str, assignee: str, who: str, when: float) -> bool:
        """Give an unresolved alert to `assignee`, acknowledging it if open; False if there
        is no such alert or it is resolved."""

    def resolve_alert(self, alert_id: str, note: str, who: str, when: float) -> bool:
        """Resolve an alert with a note, acknowledging it first if open; False if there is
        no such alert or it was resolved before."""

    def label_track(self, global_id: int, affiliation: str | None, target_class: str | None,
                    who: str, when: float) -> TrackLabel | None:  # fmt: skip
        """Set a track's affiliation and/or class (None keeps the label's value); None if
        there is no such fused track."""

    def track_label(self, global_id: int) -> TrackLabel | None: ...

    def track_labels(self) -> dict[int, TrackLabel]: ...

    def seed_geography(self, border: Sequence[LatLon], zones: Mapping[str, Sequence[LatLon]],
                       places: Sequence[Place], when: float) -> None:  # fmt: skip
        """The configured border and zones, and places, each unless stored before."""

    def border(self) -> Area | None: ...

    def zones(self) -> list[Area]: ...

    def zone(self, name: str) -> Area | None: ...

    def put_zone(self, name: str, points: Sequence[LatLon], who: str, when: float,
                 create: bool) -> Area | None:  # fmt: skip
        """Create (create=True; None if the name is taken) or replace (None if absent)."""

    def put_border(self, points: Sequence[LatLon], who: str, when: float) -> Area: ...

    def places(self) -> list[Place]: ...

    def put_place(self, place: Place) -> Place:
        """Create or replace a place by name (audited as its `updated_by`)."""

    def add_token(self, token: ApiToken, secret_sha256: str, actor: str) -> None:
        """Store a new token; ValueError if an active token has its name."""

    def revoke_tokens(self, name_or_id: str, actor: str, when: float) -> int:
        """Revoke the active tokens with this name or id; how many."""

    def tokens(self) -> list[ApiToken]: ...

    def token(self, token_id: str) -> tuple[ApiToken, str] | None:
        """A token's record and its secret's sha256 (hex)."""

    def append_audit(self, actor: str, action: str, details: Mapping[str, Any],
                     when: float | None = None) -> AuditEntry: ...  # fmt: skip

    def audit_log(self, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]: ...

    def verify_audit(self, anchor: str | None = None) -> AuditVerification: ...

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]: ...

    def purge(self, now: float, history_days: float, dead_letter_days: float,
              audit_days: float | None = None) -> PurgeResult:  # fmt: skip
        """Delete what is older than its retention (our drones' telemetry goes with the track
        history); refuses audit_days < AUDIT_MIN_DAYS."""

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


def load_json(text: str | bytes) -> Any:
    """A JSON column's value (a fused track's covariance and sources). orjson parses a
    covariance several times faster than the standard library, which matters at 10,000 rows
    a query; but a non-finite float is written as NaN or Infinity (Python's json.dumps),
    which strict JSON (orjson) refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
