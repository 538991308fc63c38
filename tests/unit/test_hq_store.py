"""HQ's store on real SQLite files: atomic batches, de-dup across restarts and crashes,
spatial and history queries, the audit chain against tampering, retention."""

import random
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from hq import audit_cli
from hq.store.interface import AUDIT_MIN_DAYS, DAY
from hq.store.records import (
    BBox,
    DeadLetter,
    FusedTrack,
    FusedTracks,
    HistoryPoint,
    HistoryPoints,
    IngestBatch,
    NodeTrack,
    NodeTracks,
)
from hq.store.sqlite import SqliteStore
from tests.conftest import PROJECT_ROOT
from wire.messages import Alert, NodeStatus, Track

pytestmark = pytest.mark.unit
NODE = "tummo/post-1"
COVARIANCE = (25.0, 1.5, 0, 0, 1.5, 20.0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.4)


def a_track(gid, t, lat=22.8, lon=14.1, target_class="person", status="confirmed"):
    return FusedTrack(gid, float(t), lat, lon, 600.0, (10.0, 20.0, 1.0, -1.0), COVARIANCE,
                      target_class, status, 0.9, (f"{NODE}:{gid}",))  # fmt: skip


def a_batch(seq, tracks, received=1000.0, **more):
    return IngestBatch(received=received, node_key=NODE, seq=seq, fused_tracks=tracks,
                       history=[HistoryPoint.of(t) for t in tracks], **more)  # fmt: skip


def a_node_track(track_id, t):
    return Track(track_id=track_id, time=t, lat=22.8, lon=14.1, alt=600.0,
                 position_enu=(1.0, 2.0), velocity_enu=(0.1, 0.2),
                 position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                 velocity_covariance=[[0.5, 0.0], [0.0, 0.5]], status="confirmed",
                 quality=0.8, hits=5)  # fmt: skip


def an_alert(alert_id="distress-1", t=1000.0, message="a person has been still for 30 min"):
    return Alert(site="tummo", node="post-1", alert_id=alert_id, alert_type="distress",
                 severity="critical", time=t, message=message, lat=22.8, lon=14.1)  # fmt: skip


def row_counts(path):
    with sqlite3.connect(path) as conn:
        tables = ["fused_tracks", "track_points", "seen_batches", "node_tracks", "dead_letters",
                  "alerts", "nodes"]  # fmt: skip
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


# -- batches ---------------------------------------------------------------------------------


def test_a_batch_that_fails_half_way_leaves_nothing_and_its_seq_unseen(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    tracks = [a_track(gid, 100.0) for gid in range(5)]
    broken = [HistoryPoint.of(t) for t in tracks[:4]] + [HistoryPoint(4, 100.0, None, *[0.0] * 8)]
    batch = IngestBatch(received=1000.0, node_key=NODE, seq=7, fused_tracks=tracks,
                        history=broken, node_tracks=[NodeTrack(NODE, a_node_track(1, 100.0))],
                        alerts=[an_alert()],
                        dead_letters=[DeadLetter(1000.0, "t", "bad json", b"{")])  # fmt: skip
    with pytest.raises(sqlite3.IntegrityError):
        store.commit_ingest(batch)  # the last history point has no latitude
    assert not store.already_seen(NODE, 7)
    assert set(row_counts(store.path).values()) == {0}
    assert store.commit_ingest(a_batch(7, tracks))  # the same seq, now whole, goes in
    assert store.already_seen(NODE, 7) and len(store.current_tracks()) == 5


def test_a_seen_batch_is_refused_after_reopening_the_file(tmp_path):
    path = tmp_path / "hq.db"
    store = SqliteStore(path)
    assert store.commit_ingest(a_batch(41, [a_track(1, 100.0)]))
    store.close()
    store = SqliteStore(path)
    assert store.already_seen(NODE, 41)
    assert not store.already_seen(NODE, 42) and not store.already_seen("tummo/post-2", 41)
    before = row_counts(path)
    assert not store.commit_ingest(a_batch(41, [a_track(1, 100.0), a_track(2, 100.0)]))
    assert row_counts(path) == before
    [node] = store.nodes()
    assert (node.node_key, node.last_seq, node.batches) == (NODE, 41, 1)


def test_late_messages_do_not_roll_current_state_back(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    status = NodeStatus(site="tummo", node="post-1", state="online", time=200.0,
                        software_version="0.1.0", outbox_depth=3)  # fmt: skip
    store.commit_ingest(a_batch(2, [a_track(1, 200.0, lat=23.0)], statuses=[status]))
    old_status = status.model_copy(update={"state": "birth", "time": 100.0})
    store.commit_ingest(a_batch(1, [a_track(1, 100.0, lat=22.0)], statuses=[old_status]))
    assert store.current_tracks()[0].lat == 23.0
    assert store.nodes()[0].status.state == "online"
    assert store.nodes()[0].last_seq == 2
    assert [p.time for p in store.track_history(1, 0, 1000)] == [100.0, 200.0]


def test_many_batches_in_one_call_are_each_written_once_and_newest_state_wins(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    assert store.commit_ingest(a_batch(1, [a_track(1, 100.0)]))
    older = a_batch(5, [a_track(1, 150.0, lat=22.5)], received=1001.0,
                    node_tracks=[NodeTrack(NODE, a_node_track(7, 150.0))])  # fmt: skip
    newer = a_batch(4, [a_track(1, 200.0, lat=23.0), a_track(2, 200.0)], received=1002.0,
                    node_tracks=[NodeTrack(NODE, a_node_track(7, 200.0))])  # fmt: skip
    again = a_batch(4, [a_track(1, 300.0, lat=24.0)], received=1003.0)  # seq 4 a second time
    assert store.commit_ingest_many([a_batch(1, []), newer, older, again]) == [
        False, True, True, False]  # fmt: skip
    tracks = {t.global_id: t for t in store.current_tracks()}
    assert tracks[1].lat == 23.0 and tracks[1].time == 200.0  # newest, not the last written
    assert [t.track.time for t in store.node_tracks()] == [200.0]
    assert [p.time for p in store.track_history(1, 0, 1000)] == [100.0, 150.0, 200.0]
    [node] = store.nodes()
    assert (node.last_seq, node.batches, node.last_batch_received) == (5, 3, 1001.0)


def test_an_error_in_one_batch_of_a_call_writes_none_of_them(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    broken = IngestBatch(received=1000.0, node_key=NODE, seq=2,
                         history=[HistoryPoint(1, 100.0, None, *[0.0] * 8)])  # fmt: skip
    with pytest.raises(sqlite3.IntegrityError):
        store.commit_ingest_many([a_batch(1, [a_track(1, 100.0)]), broken])
    assert set(row_counts(store.path).values()) == {0}
    assert not store.already_seen(NODE, 1)


def test_columns_read_back_as_the_records_they_were_made_of():
    tracks = [a_track(gid, 100.0 + gid, lat=22.0 + gid / 10) for gid in range(3)]
    table = FusedTracks.of(tracks)
    assert list(table) == tracks and table[1] == tracks[1] and table[-1] == tracks[-1]
    assert list(FusedTracks.concat([table, FusedTracks.of([])])) == tracks
    assert list(table.take(np.array([2, 0]))) == [tracks[2], tracks[0]]
    points = [HistoryPoint.of(t) for t in tracks]
    assert list(HistoryPoints.of(points)) == points
    node_tracks = NodeTracks.of(NODE, [a_node_track(5, 100.0)], [9])
    assert list(node_tracks) == [NodeTrack(NODE, a_node_track(5, 100.0), 9)]


CHILD = """
import sys
from hq.store.records import IngestBatch, FusedTrack, HistoryPoint, DeadLetter
from hq.store.sqlite import SqliteStore
store = SqliteStore(sys.argv[1])
cov = tuple(float(i == j) for i in range(4) for j in range(4))
for seq in range(100_000):
    tracks = [FusedTrack(gid, float(seq), 22.8, 14.1, 600.0, (0.0, 0.0, 0.0, 0.0), cov,
                         "vehicle", "confirmed", 0.9) for gid in range(200)]
    store.commit_ingest(IngestBatch(received=float(seq), node_key="tummo/post-1", seq=seq,
        fused_tracks=tracks, history=[HistoryPoint.of(t) for t in tracks],
        dead_letters=[DeadLetter(float(seq), f"seq/{seq}", "test", b"x")]))
    print(seq, flush=True)
"""


def test_kill_9_while_committing_loses_no_batch_and_leaves_no_partial_one(tmp_path):
    path = tmp_path / "hq.db"
    SqliteStore(path).close()  # the schema exists before the child starts
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    committed = [int(child.stdout.readline()) for _ in range(30)]
    time.sleep(random.uniform(0.0, 0.05))  # land somewhere inside a later batch
    child.kill()
    child.wait()
    with sqlite3.connect(path) as conn:
        seen = {s for (s,) in conn.execute("SELECT seq FROM seen_batches")}
        points = dict(conn.execute("SELECT time, COUNT(*) FROM track_points GROUP BY time"))
        letters = {t for (t,) in conn.execute("SELECT topic FROM dead_letters")}
    assert set(committed) <= seen
    assert points == {float(seq): 200 for seq in seen}  # every seen batch whole, no other rows
    assert letters == {f"seq/{seq}" for seq in seen}
    assert SqliteStore(path).verify_audit().ok


def test_readers_never_see_half_a_batch_while_the_writer_commits(tmp_path):
    store = SqliteStore(tmp_path / "hq.db", synchronous="NORMAL")
    store.commit_ingest(a_batch(0, [a_track(gid, 0.0) for gid in range(20)]))
    done, problems = threading.Event(), []

    def read():
        while not done.is_set():
            times = {t.time for t in store.current_tracks()}
            if len(times) != 1:  # each batch moves all 20 tracks to one new time
                problems.append(times)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for seq in range(1, 150):
        store.commit_ingest(a_batch(seq, [a_track(gid, seq) for gid in range(20)]))
    done.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert {t.time for t in store.current_tracks()} == {149.0}


# -- queries ---------------------------------------------------------------------------------


def test_the_box_query_returns_exactly_the_tracks_inside(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    rng = random.Random(3)
    tracks = [a_track(gid, 10.0, lat=rng.uniform(20, 25), lon=rng.uniform(10, 15),
                      target_class=rng.choice(["person", "vehicle"])) for gid in range(600)]
    store.commit_ingest(a_batch(0, tracks))
    # Half of them move, so the index must follow updates as well as inserts.
    moved = [a_track(t.global_id, 20.0, lat=rng.uniform(20, 25), lon=rng.uniform(10, 15),
                     target_class=t.target_class) if t.global_id % 2 else t for t in tracks]
    store.commit_ingest(a_batch(1, [t for t in moved if t.global_id % 2]))
    boxes = []
    for _ in range(40):
        south, north = sorted(rng.uniform(19.5, 25.5) for _ in range(2))
        west, east = sorted(rng.uniform(9.5, 15.5) for _ in range(2))
        boxes.append(BBox(south, west, north, east))
    edge = moved[5]  # a box whose edges pass exactly through a track: edges count as inside
    boxes.append(BBox(edge.lat, edge.lon, edge.lat + 1, edge.lon + 1))
    for box in boxes:
        expected = {t.global_id for t in moved
                    if box.south <= t.lat <= box.north and box.west <= t.lon <= box.east}
        assert {t.global_id for t in store.current_tracks(bbox=box)} == expected
        vehicles = {t.global_id for t in store.current_tracks(bbox=box, target_class="vehicle")}
        assert vehicles == {g for g in expected if moved[g].target_class == "vehicle"}
    assert edge.global_id in {t.global_id for t in store.current_tracks(bbox=boxes[-1])}
    assert store.current_tracks()[7] == moved[7]  # what goes in comes back out


def test_history_over_a_window_in_time_order_and_decimated_within_bounds(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    times = list(range(1000))
    random.Random(5).shuffle(times)  # batches arrive out of order
    for seq, start in enumerate(range(0, 1000, 100)):
        chunk = times[start:start + 100]
        store.commit_ingest(IngestBatch(
            received=1.0, node_key=NODE, seq=seq,
            history=[HistoryPoint.of(a_track(gid, t)) for t in chunk for gid in (1, 2)]))
    window = [p.time for p in store.track_history(1, 100.5, 700.0)]
    assert window == [float(t) for t in range(101, 701)]
    assert {p.global_id for p in store.track_history(1, 0, 1e9)} == {1}
    for first, last in [(5, 5), (5, 6), (5, 7), (0, 98), (0, 99), (0, 100), (3, 999)]:
        full = [p.time for p in store.track_history(1, first, last)]
        for max_points in (2, 3, 7, 100, 2000):
            kept = [p.time for p in store.track_history(1, first, last, max_points)]
            assert len(kept) <= max_points and set(kept) <= set(full)
            assert kept[0] == full[0] and kept[-1] == full[-1] and kept == sorted(kept)
            if len(full) <= max_points:
                assert kept == full
    with pytest.raises(ValueError):
        store.track_history(1, 0, 10, max_points=1)


def test_dead_letters_newest_first_and_since(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    letters = [DeadLetter(float(t), "dunewatch/v1/x/y/tracks", "bad", b"{", "x/y")
               for t in range(5)]  # fmt: skip
    store.commit_ingest(IngestBatch(received=5.0, dead_letters=letters))
    assert [d.received for d in store.dead_letters()] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert [d.received for d in store.dead_letters(since=3.0)] == [4.0, 3.0]
    assert store.dead_letters(limit=1)[0].payload == b"{"


# -- alerts and the audit log ------------------------------------------------------------------


def test_acknowledging_an_alert_writes_an_audit_row(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    store.commit_ingest(IngestBatch(received=1000.0, alerts=[an_alert()]))
    assert [a.state for a in store.alerts()] == ["open"]
    assert store.acknowledge_alert("distress-1", "operator-ana", 1010.0)
    assert not store.acknowledge_alert("distress-1", "operator-ana", 1011.0)  # already done
    assert not store.acknowledge_alert("no-such-alert", "operator-ana", 1011.0)
    [entry] = store.audit_log()
    assert (entry.actor, entry.action, entry.time) == ("operator-ana", "alert.acknowledge", 1010.0)
    assert entry.details_dict() == {"alert_id": "distress-1"}
    # The alert goes on being updated, and stays acknowledged.
    update = an_alert(t=1020.0, message="still there")
    store.commit_ingest(IngestBatch(received=1020.0, alerts=[update]))
    [record] = store.alerts(state="acknowledged")
    assert (record.acknowledged_by, record.acknowledged_at) == ("operator-ana", 1010.0)
    assert (record.first_time, record.alert.message) == (1000.0, "still there")
    assert store.alerts(state="open") == []
    assert store.verify_audit().ok


def test_alerts_by_id_and_kind_newest_first(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    crossing = an_alert("crossing-9", t=1003.0).model_copy(update={"alert_type": "border_crossing"})
    store.commit_ingest(IngestBatch(received=1004.0, alerts=[
        an_alert("distress-1", t=1000.0), an_alert("distress-2", t=1002.0), crossing]))
    ids = ["distress-1", "crossing-9", "no-such-alert"]
    assert [r.alert.alert_id for r in store.alerts_by_id(ids)] == ["crossing-9", "distress-1"]
    assert [r.alert.alert_id for r in store.alerts_by_id(ids, since=1001.0)] == ["crossing-9"]
    assert [r.alert.alert_id for r in store.alerts_by_id(ids, limit=1)] == ["crossing-9"]
    assert store.alerts_by_id([]) == []
    assert [r.alert.alert_id for r in store.alerts(alert_type="distress")] == [
        "distress-2", "distress-1"]


def test_one_track_its_node_tracks_and_the_rows_of_all(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    store.commit_ingest(a_batch(1, [a_track(3, 1000.0), a_track(1, 1000.0)], node_tracks=[
        NodeTrack(NODE, a_node_track(12, 1000.0), 3), NodeTrack(NODE, a_node_track(11, 1000.0), 3),
        NodeTrack(NODE, a_node_track(13, 1000.0), 1)]))  # fmt: skip
    assert store.fused_track(3) == a_track(3, 1000.0)
    assert store.fused_track(2) is None
    assert [n.track.track_id for n in store.node_tracks_of(3)] == [11, 12]
    rows = store.current_track_rows()
    assert [row[0] for row in rows] == [1, 3], "by global id"
    assert [t.global_id for t in store.current_tracks()] == [row[0] for row in rows]


def an_audited_store(path, rows=6):
    store = SqliteStore(path)
    for k in range(rows):
        store.append_audit(f"operator-{k}", "track.affiliation", {"global_id": k, "to": "x"},
                           when=1000.0 + k)  # fmt: skip
    return store


def tamper(path, *statements):
    """What someone with the file could do: drop the guards, then change rows."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_keep_six_months")
        for sql in statements:
            conn.execute(sql)


SWAP_3_AND_4 = [
    "UPDATE audit_log SET seq = -1 WHERE seq = 3",
    "UPDATE audit_log SET seq = 3 WHERE seq = 4",
    "UPDATE audit_log SET seq = 4 WHERE seq = -1",
]


@pytest.mark.parametrize("statements, first_bad", [
    (["UPDATE audit_log SET details = '{\"global_id\":2,\"to\":\"hostile\"}' WHERE seq = 3"], 3),
    (["UPDATE audit_log SET time = 999.0 WHERE seq = 5"], 5),
    (["DELETE FROM audit_log WHERE seq = 3"], 4),
    (["DELETE FROM audit_log WHERE seq = 1"], 2),
    (SWAP_3_AND_4, 3),
])  # fmt: skip
def test_the_audit_chain_names_the_first_tampered_row(tmp_path, statements, first_bad, capsys):
    path = tmp_path / "hq.db"
    store = an_audited_store(path)
    assert store.verify_audit().ok and store.verify_audit().rows_checked == 6
    store.close()
    tamper(path, *statements)
    result = SqliteStore(path, read_only=True).verify_audit()
    assert not result.ok and result.first_bad_seq == first_bad
    assert audit_cli.main(["--db", str(path)]) == 1
    assert f"BROKEN at seq {first_bad}" in capsys.readouterr().out


def test_a_cut_off_tail_is_caught_with_an_anchor(tmp_path, capsys):
    path = tmp_path / "hq.db"
    store = an_audited_store(path)
    head = store.verify_audit().head_hash
    store.close()
    assert audit_cli.main(["--db", str(path), "--anchor", head]) == 0
    assert head in capsys.readouterr().out
    tamper(path, "DELETE FROM audit_log WHERE seq = 6")
    assert SqliteStore(path, read_only=True).verify_audit().ok  # the chain alone cannot tell
    assert audit_cli.main(["--db", str(path), "--anchor", head]) == 1


def test_the_file_itself_refuses_changes_to_the_audit_log(tmp_path):
    path = tmp_path / "hq.db"
    store = SqliteStore(path)
    for k in range(3):
        store.append_audit("operator-ana", "export.tracks", {"k": k})  # now: younger than 183 d
    store.close()
    with sqlite3.connect(path) as conn:
        for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 2",
                    "DELETE FROM audit_log WHERE seq = 2"):  # fmt: skip
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
    assert audit_cli.main(["--db", str(tmp_path / "absent.db")]) == 2


# -- retention -------------------------------------------------------------------------------


def test_purge_removes_old_history_and_dead_letters_and_keeps_recent_audit_rows(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    now = time.time()  # the six-month floor is checked against the database's own clock
    for age_days in (300, 200, 100, 1):
        store.append_audit("operator-ana", "export.tracks", {"age": age_days},
                           when=now - age_days * DAY)  # fmt: skip
    old, new = a_track(1, now - 40 * DAY), a_track(2, now - 1 * DAY)
    store.commit_ingest(a_batch(0, [old, new], received=now - 40 * DAY, dead_letters=[
        DeadLetter(now - 10 * DAY, "t", "bad", b"old"),
        DeadLetter(now - 1 * DAY, "t", "bad", b"new")]))  # fmt: skip
    with pytest.raises(ValueError, match="183"):
        store.purge(now, history_days=30, dead_letter_days=7, audit_days=AUDIT_MIN_DAYS - 1)
    result = store.purge(now, history_days=30, dead_letter_days=7, audit_days=AUDIT_MIN_DAYS)
    assert (result.history_points, result.fused_tracks, result.dead_letters) == (1, 1, 1)
    assert (result.seen_batches, result.audit_rows, result.audit_cut_seq) == (1, 2, 2)
    assert [t.global_id for t in store.current_tracks()] == [2]
    assert [p.global_id for p in store.track_history(2, 0, now)] == [2]
    assert store.track_history(1, 0, now) == []
    assert [d.payload for d in store.dead_letters()] == [b"new"]
    ages = [e.details_dict().get("age") for e in store.audit_log()]
    assert ages == [100, 1, None]  # None: the purge's own row
    assert store.audit_log()[-1].action == "store.purge"
    assert store.verify_audit().ok  # the chain now starts after the recorded cut
    store.close()
    tamper(store.path, "DELETE FROM audit_log WHERE seq = 3")  # the oldest left, gone quietly
    assert SqliteStore(store.path).verify_audit().first_bad_seq == 4


def test_purge_cannot_reach_young_audit_rows_with_a_wrong_clock(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    now = time.time()
    for age_days in (10, 5):
        store.append_audit("operator-ana", "export.tracks", {}, when=now - age_days * DAY)
    store.commit_ingest(a_batch(0, [a_track(1, now - 40 * DAY)]))
    with pytest.raises(sqlite3.IntegrityError, match="183 days"):
        store.purge(now + 400 * DAY, history_days=30, dead_letter_days=7, audit_days=183)
    assert len(store.audit_log()) == 2 and len(store.current_tracks()) == 1  # all rolled back


def test_stats_count_rows_and_measure_the_file(tmp_path):
    store = SqliteStore(tmp_path / "hq.db")
    store.commit_ingest(a_batch(0, [a_track(gid, 1.0) for gid in range(3)]))
    stats = store.stats()
    assert stats.rows["fused_tracks"] == 3 and stats.rows["track_points"] == 3
    assert stats.rows["seen_batches"] == 1 and stats.file_bytes > 0


def test_the_highest_global_id_survives_reopening(tmp_path):
    path = tmp_path / "hq.db"
    store = SqliteStore(path)
    assert store.max_global_id() == 0
    tracks = [a_track(7, 1.0), a_track(41, 1.0)]
    store.commit_ingest(IngestBatch(received=1.0, fused_tracks=tracks,
                                    history=[HistoryPoint.of(t) for t in tracks]))  # fmt: skip
    store.close()
    assert SqliteStore(path).max_global_id() == 41
