"""What only the SQLite backend does: read-only opening, and a file written by an earlier
HQ migrated in place; and the column records. Everything every backend must do is the
contract suite (tests/contract/test_store_contract.py), run on SQLite and PostgreSQL."""

import sqlite3

import numpy as np
import pytest
import sqlite_utils

from hq.store.records import (
    FusedTrack,
    FusedTracks,
    HistoryPoint,
    HistoryPoints,
    IngestBatch,
    NodeTrack,
    NodeTracks,
)
from hq.store.sqlite import SqliteStore
from hq.store.sqlite.schema import MIGRATIONS, _first_schema
from wire.messages import Track

pytestmark = pytest.mark.unit
NODE = "tummo/post-1"
COVARIANCE = (25.0, 1.5, 0, 0, 1.5, 20.0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.4)


def a_track(gid, t, lat=22.8, lon=14.1):
    return FusedTrack(gid, float(t), lat, lon, 600.0, (10.0, 20.0, 1.0, -1.0), COVARIANCE,
                      "person", "confirmed", 0.9, (f"{NODE}:{gid}",))  # fmt: skip


def a_node_track(track_id, t):
    return Track(track_id=track_id, time=t, lat=22.8, lon=14.1, alt=600.0,
                 position_enu=(1.0, 2.0), velocity_enu=(0.1, 0.2),
                 position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                 velocity_covariance=[[0.5, 0.0], [0.0, 0.5]], status="confirmed",
                 quality=0.8, hits=5)  # fmt: skip


def test_columns_read_back_as_the_records_they_were_made_of():
    tracks = [a_track(gid, 100.0 + gid, lat=22.0 + gid / 10) for gid in range(3)]
    table = FusedTracks.of(tracks)
    assert list(table) == tracks and table[1] == tracks[1] and table[-1] == tracks[-1]
    assert list(FusedTracks.concat([table, FusedTracks.of([])])) == tracks
    assert list(table.take(np.array([2, 0]))) == [tracks[2], tracks[0]]
    assert list(table.take(np.array([], dtype=int))) == []
    points = [HistoryPoint.of(t) for t in tracks]
    assert list(HistoryPoints.of(points)) == points
    node_tracks = NodeTracks.of(NODE, [a_node_track(5, 100.0)], [9])
    assert list(node_tracks) == [NodeTrack(NODE, a_node_track(5, 100.0), 9)]


def a_version_1_file(path):
    """A file as HQ wrote it before operator state moved into the store (schema 1)."""
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    _first_schema(db)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO nodes (node_key, site, node) VALUES (?, 'tummo', 'post-1')", [NODE])
    db.execute("INSERT INTO seen_batches VALUES (?, 41, 1.0)", [NODE])
    db.execute("INSERT INTO alerts (alert_id, state, first_time, time, alert) "
               "VALUES ('old-1', 'acknowledged', 1.0, 2.0, '{}')")  # fmt: skip
    db.conn.close()


def test_a_file_of_an_earlier_hq_is_migrated_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "hq.db"
    a_version_1_file(path)
    with pytest.raises(RuntimeError, match="predates"):
        SqliteStore(path, read_only=True)  # a check must not repair what it checks
    store = SqliteStore(path)
    assert store.already_seen(NODE, 41)
    assert store.alert_ids("acknowledged") == ["old-1"]
    assert store.commit_ingest(IngestBatch(5.0, node_key=NODE, seq=42, fused_tracks=[
        a_track(1, 5.0)]))  # fmt: skip
    assert store.changes_since(0).tracks.global_id.tolist() == [1]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    SqliteStore(path).close()  # opening again changes nothing
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_file_from_newer_code_is_refused_not_misread(tmp_path):
    path = tmp_path / "hq.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        SqliteStore(path)


def test_read_only_opens_no_file_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        SqliteStore(tmp_path / "absent.db", read_only=True)
    SqliteStore(tmp_path / "hq.db").close()
    reader = SqliteStore(tmp_path / "hq.db", read_only=True)
    with pytest.raises(PermissionError):
        reader.append_audit("someone", "test.action", {})
    assert reader.audit_log() == []
