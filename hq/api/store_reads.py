"""Reads of the track store that its interface (hq/store.py) does not offer yet.

Each opens the store's database file read-only for one query, so nothing
here can change the store; move them into the store's interface when it
grows them (a PostgreSQL backend would need its own).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hq.store import AlertRecord, BBox, FusedTrack, NodeTrack
from hq.store_sqlite import current_tracks_query, fused_from_row
from hq.store_sqlite_write import FUSED_COLUMNS
from wire.messages import Alert, Track, TrackStatus


def alert_by_id(database: Path, alert_id: str) -> AlertRecord | None:
    with _read_only(database) as conn:
        row = conn.execute("SELECT alert, state, first_time, acknowledged_by, acknowledged_at "
                           "FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()  # fmt: skip
    return None if row is None else AlertRecord(Alert.model_validate_json(row[0]), *row[1:])


def fused_track_by_id(database: Path, global_id: int) -> FusedTrack | None:
    with _read_only(database) as conn:
        row = conn.execute(f"SELECT {', '.join(FUSED_COLUMNS)} FROM fused_tracks "
                           "WHERE global_id = ?", [global_id]).fetchone()  # fmt: skip
    return None if row is None else fused_from_row(row)


def current_track_rows(database: Path, bbox: BBox | None = None,
                       status: TrackStatus | None = None) -> list[tuple]:  # fmt: skip
    """The current tracks as stored rows, by global id: FUSED_COLUMNS with the covariance and
    the sources still JSON text (hq.store_sqlite.load_json reads them).

    For the track list, which filters and pages on the id and class alone and decodes
    only the rows of the page it sends: at 10,000 tracks, making a FusedTrack of every
    row costs more than the query.
    """
    sql, params = current_tracks_query(bbox, status=status)
    with _read_only(database) as conn:
        return conn.execute(sql, params).fetchall()


def node_tracks_of(database: Path, global_id: int) -> list[NodeTrack]:
    """The node tracks that fusion put in this global track."""
    with _read_only(database) as conn:
        rows = conn.execute("SELECT node_key, track FROM node_tracks WHERE global_id = ? "
                            "ORDER BY node_key, track_id", [global_id]).fetchall()  # fmt: skip
    return [NodeTrack(key, Track.model_validate_json(track), global_id) for key, track in rows]


@contextmanager
def _read_only(database: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        yield conn
    finally:
        conn.close()
