"""The Store interface: everything ingest, fusion, alerts, TAK and the API ask of HQ's store.

All HQ state (tracks, history, nodes, alerts, dead letters, the audit log) lives
behind it. Nothing outside a backend writes SQL, so each backend is a folder of
its own beside this file (sqlite/ today; a PostgreSQL one is a sibling
folder, not a rewrite). The audit log's hash chain is hq/audit.py, shared by
every backend.
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
from wire.messages import TargetClass, TrackStatus

DAY = 86_400.0
AUDIT_MIN_DAYS = 183  # the audit log is kept at least six months
SCHEMA_VERSION = 1


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

    def current_track_rows(self, bbox: BBox | None = None,
                           status: TrackStatus | None = None) -> list[tuple]:  # fmt: skip
        """`current_tracks` as stored rows, by global id: the fused tracks' columns with the
        covariance and the sources still JSON text. For the API's track list, which pages
        on the id and decodes only the rows it sends (at 10,000 tracks, making a FusedTrack
        of every row costs more than the query)."""

    def fused_track(self, global_id: int) -> FusedTrack | None: ...

    def node_tracks(self, node_key: str | None = None) -> list[NodeTrack]: ...

    def node_tracks_of(self, global_id: int) -> list[NodeTrack]:
        """The node tracks that fusion put in this global track."""

    def nodes(self) -> list[NodeRecord]: ...

    def alerts(self, state: AlertState | None = None, since: float | None = None,
               limit: int = 100, alert_type: str | None = None) -> list[AlertRecord]:
        """The newest alerts first, of one state and kind where given."""

    def alerts_by_id(self, alert_ids: Sequence[str], since: float | None = None,
                     limit: int = 100) -> list[AlertRecord]:  # fmt: skip
        """The alerts of these ids (those that exist), newest first."""

    def acknowledge_alert(self, alert_id: str, who: str, when: float) -> bool:
        """Mark an open alert acknowledged, with its audit row; False if none is open."""

    def append_audit(self, actor: str, action: str, details: Mapping[str, Any],
                     when: float | None = None) -> AuditEntry: ...  # fmt: skip

    def audit_log(self, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]: ...

    def verify_audit(self, anchor: str | None = None) -> AuditVerification: ...

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]: ...

    def purge(self, now: float, history_days: float, dead_letter_days: float,
              audit_days: float | None = None) -> PurgeResult:  # fmt: skip
        """Delete what is older than its retention; refuses audit_days < AUDIT_MIN_DAYS."""

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


def load_json(text: str | bytes) -> Any:
    """A JSON column's value (`current_track_rows`' covariance and sources). orjson parses a
    covariance several times faster than the standard library, which matters at 10,000 rows
    a query; but a non-finite float is written as NaN or Infinity (Python's json.dumps),
    which strict JSON (orjson) refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
