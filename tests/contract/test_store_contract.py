"""The Store's contract, run against every backend (a real SQLite file, a real PostgreSQL
database of the test's own): atomic batches, de-dup across restarts, crashes and writers,
spatial and history queries, the audit chain against tampering, retention, migrations."""

import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from hq import audit_cli
from hq.store.interface import AUDIT_MIN_DAYS, DAY
from hq.store.records import (
    ApiToken,
    Area,
    BBox,
    DeadLetter,
    FusedTrack,
    FusedTracks,
    HistoryPoint,
    HistoryPoints,
    IngestBatch,
    NodeTrack,
    NodeTracks,
    Place,
    TrackLabel,
)
from tests.conftest import PROJECT_ROOT
from tests.store_backends import BACKENDS, Backend, backend_of
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


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with backend_of(request.param, tmp_path) as found:
        yield found


@pytest.fixture
def store(backend):
    opened = backend.open()
    yield opened
    opened.close()


def row_counts(backend: Backend):
    tables = ["fused_tracks", "track_points", "seen_batches", "node_tracks", "dead_letters",
              "alerts", "nodes"]  # fmt: skip
    return {t: backend.count(t) for t in tables}


# -- batches ---------------------------------------------------------------------------------


def test_a_batch_that_fails_half_way_leaves_nothing_and_its_seq_unseen(backend, store):
    tracks = [a_track(gid, 100.0) for gid in range(5)]
    broken = [HistoryPoint.of(t) for t in tracks[:4]] + [HistoryPoint(4, 100.0, None, *[0.0] * 8)]
    batch = IngestBatch(received=1000.0, node_key=NODE, seq=7, fused_tracks=tracks,
                        history=broken, node_tracks=[NodeTrack(NODE, a_node_track(1, 100.0))],
                        alerts=[an_alert()],
                        dead_letters=[DeadLetter(1000.0, "t", "bad json", b"{")])  # fmt: skip
    with pytest.raises(backend.integrity_error):
        store.commit_ingest(batch)  # the last history point has no latitude
    assert not store.already_seen(NODE, 7)
    assert set(row_counts(backend).values()) == {0}
    assert store.commit_ingest(a_batch(7, tracks))  # the same seq, now whole, goes in
    assert store.already_seen(NODE, 7) and len(store.current_tracks()) == 5


def test_a_seen_batch_is_refused_after_reopening_the_store(backend):
    store = backend.open()
    assert store.commit_ingest(a_batch(41, [a_track(1, 100.0)]))
    store.close()
    store = backend.open()
    assert store.already_seen(NODE, 41)
    assert not store.already_seen(NODE, 42) and not store.already_seen("tummo/post-2", 41)
    before = row_counts(backend)
    assert not store.commit_ingest(a_batch(41, [a_track(1, 100.0), a_track(2, 100.0)]))
    assert row_counts(backend) == before
    [node] = store.nodes()
    assert (node.node_key, node.last_seq, node.batches) == (NODE, 41, 1)
    store.close()


def test_late_messages_do_not_roll_current_state_back(store):
    status = NodeStatus(site="tummo", node="post-1", state="online", time=200.0,
                        software_version="0.1.0", outbox_depth=3)  # fmt: skip
    store.commit_ingest(a_batch(2, [a_track(1, 200.0, lat=23.0)], statuses=[status]))
    old_status = status.model_copy(update={"state": "birth", "time": 100.0})
    store.commit_ingest(a_batch(1, [a_track(1, 100.0, lat=22.0)], statuses=[old_status]))
    assert store.current_tracks()[0].lat == 23.0
    assert store.nodes()[0].status.state == "online"
    assert store.nodes()[0].last_seq == 2
    assert [p.time for p in store.track_history(1, 0, 1000)] == [100.0, 200.0]


def test_many_batches_in_one_call_are_each_written_once_and_newest_state_wins(store):
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


def test_an_error_in_one_batch_of_a_call_writes_none_of_them(backend, store):
    broken = IngestBatch(received=1000.0, node_key=NODE, seq=2,
                         history=[HistoryPoint(1, 100.0, None, *[0.0] * 8)])  # fmt: skip
    with pytest.raises(backend.integrity_error):
        store.commit_ingest_many([a_batch(1, [a_track(1, 100.0)]), broken])
    assert set(row_counts(backend).values()) == {0}
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
from hq.store import open_store
store = open_store(sys.argv[1])
cov = tuple(float(i == j) for i in range(4) for j in range(4))
for seq in range(100_000):
    tracks = [FusedTrack(gid, float(seq), 22.8, 14.1, 600.0, (0.0, 0.0, 0.0, 0.0), cov,
                         "vehicle", "confirmed", 0.9) for gid in range(200)]
    store.commit_ingest(IngestBatch(received=float(seq), node_key="tummo/post-1", seq=seq,
        fused_tracks=tracks, history=[HistoryPoint.of(t) for t in tracks],
        dead_letters=[DeadLetter(float(seq), f"seq/{seq}", "test", b"x")]))
    print(seq, flush=True)
"""


def test_kill_9_while_committing_loses_no_batch_and_leaves_no_partial_one(backend):
    backend.open().close()  # the schema exists before the child starts
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend.location], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    committed = [int(child.stdout.readline()) for _ in range(30)]
    time.sleep(random.uniform(0.0, 0.05))  # land somewhere inside a later batch
    child.kill()
    child.wait()
    seen = {s for (s,) in backend.execute("SELECT seq FROM seen_batches")}
    points = dict(backend.execute("SELECT time, COUNT(*) FROM track_points GROUP BY time"))
    letters = {t for (t,) in backend.execute("SELECT topic FROM dead_letters")}
    assert set(committed) <= seen
    assert points == {float(seq): 200 for seq in seen}  # every seen batch whole, no other rows
    assert letters == {f"seq/{seq}" for seq in seen}
    with backend.open() as store:
        assert store.verify_audit().ok


def test_readers_never_see_half_a_batch_while_the_writer_commits(store):
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


def test_the_box_query_returns_exactly_the_tracks_inside(store):
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


def test_history_over_a_window_in_time_order_and_decimated_within_bounds(store):
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


def test_dead_letters_newest_first_and_since(store):
    letters = [DeadLetter(float(t), "dunewatch/v1/x/y/tracks", "bad", b"{", "x/y")
               for t in range(5)]  # fmt: skip
    store.commit_ingest(IngestBatch(received=5.0, dead_letters=letters))
    assert [d.received for d in store.dead_letters()] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert [d.received for d in store.dead_letters(since=3.0)] == [4.0, 3.0]
    assert store.dead_letters(limit=1)[0].payload == b"{"


def test_a_dead_letter_keeps_the_size_and_hash_of_the_whole_message(store):
    sha = "ab" * 32
    store.commit_ingest(IngestBatch(received=1.0, dead_letters=[
        DeadLetter(1.0, "t", "rate limit", b"", payload_size=5 * 2**20, payload_sha256=sha),
        DeadLetter(2.0, "t", "invalid", b"{\x00", payload_size=2, payload_sha256=None)]))
    newest, oldest = store.dead_letters()
    assert (newest.payload, newest.payload_size, newest.payload_sha256) == (b"{\x00", 2, None)
    assert (oldest.payload, oldest.payload_size, oldest.payload_sha256) == (b"", 5 * 2**20, sha)
    assert oldest.letter_id is not None and oldest.node_key is None


# -- alerts and the audit log ------------------------------------------------------------------


def test_acknowledging_an_alert_writes_an_audit_row(store):
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


def test_alerts_by_id_and_kind_newest_first(store):
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


def test_one_track_its_node_tracks_and_the_table_of_all(store):
    store.commit_ingest(a_batch(1, [a_track(3, 1000.0), a_track(1, 1000.0)], node_tracks=[
        NodeTrack(NODE, a_node_track(12, 1000.0), 3), NodeTrack(NODE, a_node_track(11, 1000.0), 3),
        NodeTrack(NODE, a_node_track(13, 1000.0), 1)]))  # fmt: skip
    assert store.fused_track(3) == a_track(3, 1000.0)
    assert store.fused_track(2) is None
    assert [n.track.track_id for n in store.node_tracks_of(3)] == [11, 12]
    table = store.current_track_table()
    assert table.global_id.tolist() == [1, 3], "by global id"
    assert list(table) == store.current_tracks() == [a_track(1, 1000.0), a_track(3, 1000.0)]
    assert list(store.current_track_table(status="coasting")) == []


def an_audited_store(backend, rows=6):
    store = backend.open()
    for k in range(rows):
        store.append_audit(f"operator-{k}", "track.affiliation", {"global_id": k, "to": "x"},
                           when=1000.0 + k)  # fmt: skip
    return store


def tamper(backend: Backend, *statements):
    """What someone holding the database could do: drop the guards, then change rows."""
    guards = ("audit_log_no_update", "audit_log_keep_six_months")
    if backend.name == "sqlite":
        drop = [f"DROP TRIGGER {name}" for name in guards]
    else:
        drop = [f"DROP TRIGGER {name} ON audit_log" for name in guards]
    backend.execute(*drop, *statements)


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
def test_the_audit_chain_names_the_first_tampered_row(backend, statements, first_bad, capsys):
    store = an_audited_store(backend)
    assert store.verify_audit().ok and store.verify_audit().rows_checked == 6
    store.close()
    tamper(backend, *statements)
    with backend.open(read_only=True) as reader:
        result = reader.verify_audit()
    assert not result.ok and result.first_bad_seq == first_bad
    assert audit_cli.main(["--store", backend.location]) == 1
    assert f"BROKEN at seq {first_bad}" in capsys.readouterr().out


def test_a_cut_off_tail_is_caught_with_an_anchor(backend, capsys):
    store = an_audited_store(backend)
    head = store.verify_audit().head_hash
    store.close()
    assert audit_cli.main(["--store", backend.location, "--anchor", head]) == 0
    assert head in capsys.readouterr().out
    tamper(backend, "DELETE FROM audit_log WHERE seq = 6")
    with backend.open(read_only=True) as reader:
        assert reader.verify_audit().ok  # the chain alone cannot tell
    assert audit_cli.main(["--store", backend.location, "--anchor", head]) == 1


def test_the_database_itself_refuses_changes_to_the_audit_log(backend, tmp_path):
    store = backend.open()
    for k in range(3):
        store.append_audit("operator-ana", "export.tracks", {"k": k})  # now: younger than 183 d
    store.close()
    refused = ["UPDATE audit_log SET actor = 'x' WHERE seq = 2",
               "DELETE FROM audit_log WHERE seq = 2"]  # fmt: skip
    if backend.name == "postgresql":
        refused.append("TRUNCATE audit_log")
    for sql in refused:
        with pytest.raises(backend.integrity_error):
            backend.execute(sql)
    assert backend.count("audit_log") == 3
    assert audit_cli.main(["--db", str(tmp_path / "absent.db")]) == 2


# -- retention -------------------------------------------------------------------------------


def test_purge_removes_old_history_and_dead_letters_and_keeps_recent_audit_rows(backend, store):
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
    tamper(backend, "DELETE FROM audit_log WHERE seq = 3")  # the oldest left, gone quietly
    assert store.verify_audit().first_bad_seq == 4


def test_purge_cannot_reach_young_audit_rows_with_a_wrong_clock(backend, store):
    now = time.time()
    for age_days in (10, 5):
        store.append_audit("operator-ana", "export.tracks", {}, when=now - age_days * DAY)
    store.commit_ingest(a_batch(0, [a_track(1, now - 40 * DAY)]))
    with pytest.raises(backend.integrity_error, match="183 days"):
        store.purge(now + 400 * DAY, history_days=30, dead_letter_days=7, audit_days=183)
    assert len(store.audit_log()) == 2 and len(store.current_tracks()) == 1  # all rolled back


def test_stats_count_rows_and_measure_the_database(store):
    store.commit_ingest(a_batch(0, [a_track(gid, 1.0) for gid in range(3)]))
    stats = store.stats()
    assert stats.rows["fused_tracks"] == 3 and stats.rows["track_points"] == 3
    assert stats.rows["seen_batches"] == 1 and stats.file_bytes > 0


def test_the_highest_global_id_survives_reopening(backend):
    store = backend.open()
    assert store.max_global_id() == 0
    tracks = [a_track(7, 1.0), a_track(41, 1.0)]
    store.commit_ingest(IngestBatch(received=1.0, fused_tracks=tracks,
                                    history=[HistoryPoint.of(t) for t in tracks]))  # fmt: skip
    store.close()
    with backend.open() as reopened:
        assert reopened.max_global_id() == 41


# -- migrations ------------------------------------------------------------------------------


def schema_version(backend: Backend) -> int:
    if backend.name == "sqlite":
        return backend.execute("PRAGMA user_version")[0][0]
    return backend.execute("SELECT MAX(version) FROM schema_migrations")[0][0]


def test_migrations_are_applied_once_and_a_newer_schema_is_refused(backend):
    backend.open().close()
    version = schema_version(backend)
    assert version >= 1
    with backend.open() as again:  # a second start (or a second process) changes nothing
        assert again.audit_log() == []
    assert schema_version(backend) == version
    if backend.name == "sqlite":
        backend.execute(f"PRAGMA user_version = {version + 1}")
    else:
        backend.execute(f"INSERT INTO schema_migrations (version, name) "
                        f"VALUES ({version + 1}, 'from newer code')")  # fmt: skip
    with pytest.raises(RuntimeError, match="schema version"):
        backend.open()


# -- operator state: each action with its audit row, in one transaction ------------------------


def test_tokens_are_kept_with_their_secrets_hash_and_every_change_is_audited(store):
    token = ApiToken("0a1b2c3d", "night-shift", "operator", 1000.0, expires_at=2000.0)
    store.add_token(token, "ab" * 32, actor="cli:root")
    assert store.token("0a1b2c3d") == (token, "ab" * 32)
    assert store.token("ffffffff") is None
    with pytest.raises(ValueError, match="exists"):
        store.add_token(ApiToken("11111111", "night-shift", "viewer", 1500.0), "cd" * 32, "x")
    assert store.revoke_tokens("night-shift", "cli:root", 1600.0) == 1
    assert store.revoke_tokens("night-shift", "cli:root", 1700.0) == 0  # none active now
    store.add_token(ApiToken("11111111", "night-shift", "viewer", 1800.0), "cd" * 32, "cli:b")
    assert [(t.token_id, t.revoked_at) for t in store.tokens()] == [
        ("0a1b2c3d", 1600.0), ("11111111", None)]  # fmt: skip
    assert [(e.actor, e.action, e.details_dict().get("token_id") or e.details_dict()["token_ids"])
            for e in store.audit_log()] == [
        ("cli:root", "token.create", "0a1b2c3d"), ("cli:root", "token.revoke", ["0a1b2c3d"]),
        ("cli:b", "token.create", "11111111")]  # fmt: skip
    assert store.verify_audit().ok


ZONE = ((22.0, 13.0), (22.0, 13.5), (22.5, 13.5))
BORDER = ((23.52, 11.99), (22.79, 14.22))


def test_zones_the_border_and_places_are_seeded_once_then_edited_with_audit_rows(store):
    post = Place("tummo-west post", 22.84, 14.13, 1500.0, "config", 10.0)
    store.seed_geography(BORDER, {"wadi": ZONE}, [post], when=10.0)
    store.seed_geography(((0.0, 0.0), (1.0, 1.0)), {"other": ZONE}, [], when=20.0)  # ignored
    assert store.border() == Area("border", BORDER, "config", 10.0)
    assert store.zones() == [Area("wadi", ZONE, "config", 10.0)] == [store.zone("wadi")]
    assert store.places() == [post]
    assert store.audit_log() == []  # the configuration is no one's action
    moved = ((22.1, 13.0), (22.1, 13.5), (22.6, 13.5))
    assert store.put_zone("wadi", moved, "admin-ali", 30.0, create=True) is None  # taken
    assert store.put_zone("dune", moved, "admin-ali", 30.0, create=False) is None  # absent
    assert store.put_zone("border", moved, "admin-ali", 30.0, create=True) is None
    assert store.put_zone("wadi", moved, "admin-ali", 31.0, create=False) == Area(
        "wadi", moved, "admin-ali", 31.0)  # fmt: skip
    store.put_zone("dune", ZONE, "admin-ali", 32.0, create=True)
    store.put_border(moved[:2], "admin-bo", 33.0)
    store.put_place(Place("well", 22.9, 14.2, 300.0, "admin-bo", 34.0))
    assert [z.name for z in store.zones()] == ["dune", "wadi"] and store.zone("nope") is None
    assert store.border().points == moved[:2] and len(store.places()) == 2
    assert [(e.actor, e.action) for e in store.audit_log()] == [
        ("admin-ali", "zone.update"), ("admin-ali", "zone.create"), ("admin-bo", "border.update"),
        ("admin-bo", "place.put")]  # fmt: skip
    assert store.audit_log()[0].details_dict() == {"name": "wadi",
                                                   "points": [list(p) for p in moved]}


def test_a_label_merges_with_the_previous_one_and_its_audit_row_says_what_was_before(store):
    store.commit_ingest(a_batch(1, [a_track(5, 100.0, target_class="person")]))
    assert store.label_track(6, "friend", None, "operator-ana", 110.0) is None  # no track 6
    first = store.label_track(5, "suspect", None, "operator-ana", 110.0)
    assert first == TrackLabel(5, "suspect", None, "operator-ana", 110.0)
    second = store.label_track(5, None, "vehicle", "operator-bo", 120.0)
    assert second == TrackLabel(5, "suspect", "vehicle", "operator-bo", 120.0)
    assert store.track_labels() == {5: second} and store.track_label(5) == second
    entries = store.audit_log()
    assert [e.actor for e in entries] == ["operator-ana", "operator-bo"]
    assert entries[1].details_dict() == {
        "global_id": 5, "affiliation": "suspect", "target_class": "vehicle",
        "fused_class": "person", "previous": {"affiliation": "suspect", "target_class": None}}


def test_the_alert_workflow_acknowledge_assign_resolve_each_with_its_audit_row(store):
    store.commit_ingest(IngestBatch(received=1000.0, alerts=[an_alert("a-1"), an_alert("a-2")]))
    assert store.assign_alert("a-1", "team-north", "operator-ana", 1010.0)
    [record] = store.alerts_by_id(["a-1"])
    assert (record.state, record.acknowledged_by, record.assigned_to, record.assigned_by) == (
        "acknowledged", "operator-ana", "team-north", "operator-ana")  # fmt: skip
    assert store.resolve_alert("a-1", "found, safe", "operator-bo", 1020.0)
    assert not store.resolve_alert("a-1", "again", "operator-bo", 1021.0)
    assert not store.assign_alert("a-1", "team-south", "operator-bo", 1022.0)  # resolved
    assert not store.resolve_alert("no-such-alert", "", "operator-bo", 1023.0)
    assert store.resolve_alert("a-2", "", "operator-bo", 1030.0)  # open: acknowledged first
    # Ingest goes on updating a resolved alert; it stays resolved, with who and why.
    store.commit_ingest(IngestBatch(received=1040.0, alerts=[an_alert("a-1", t=1040.0,
                                                                      message="still")]))
    [record] = store.alerts_by_id(["a-1"])
    assert (record.state, record.resolved_by, record.resolved_at, record.resolution_note,
            record.alert.message) == ("resolved", "operator-bo", 1020.0, "found, safe", "still")
    assert store.alert_ids("resolved") == ["a-1", "a-2"] and store.alerts(state="open") == []
    assert [(e.actor, e.action, e.details_dict()["alert_id"]) for e in store.audit_log()] == [
        ("operator-ana", "alert.acknowledge", "a-1"), ("operator-ana", "alert.assign", "a-1"),
        ("operator-bo", "alert.resolve", "a-1"), ("operator-bo", "alert.acknowledge", "a-2"),
        ("operator-bo", "alert.resolve", "a-2")]  # fmt: skip
    assert store.verify_audit().ok


def refuse_audit_rows(backend: Backend) -> None:
    """A database that takes no audit row (a full disk would look alike to the store)."""
    if backend.name == "sqlite":
        backend.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN "
                        "SELECT RAISE(ABORT, 'refused for the test'); END")  # fmt: skip
    else:
        backend.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                        "BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
                        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                        "FOR EACH ROW EXECUTE FUNCTION refuse()")  # fmt: skip


def test_an_action_whose_audit_row_cannot_be_written_does_not_happen(backend, store):
    store.seed_geography(BORDER, {"wadi": ZONE}, [], when=10.0)
    store.commit_ingest(a_batch(1, [a_track(5, 100.0)], alerts=[an_alert("a-1")]))
    refuse_audit_rows(backend)
    actions = [
        lambda: store.acknowledge_alert("a-1", "operator-ana", 110.0),
        lambda: store.assign_alert("a-1", "team-north", "operator-ana", 110.0),
        lambda: store.resolve_alert("a-1", "note", "operator-ana", 110.0),
        lambda: store.label_track(5, "hostile", None, "operator-ana", 110.0),
        lambda: store.put_zone("dune", ZONE, "admin-ali", 110.0, create=True),
        lambda: store.put_border(ZONE[:2], "admin-ali", 110.0),
        lambda: store.add_token(ApiToken("0a1b2c3d", "x", "admin", 110.0), "ab" * 32, "cli"),
    ]
    for action in actions:
        with pytest.raises(Exception, match="refused for the test"):
            action()
    [alert] = store.alerts()
    assert (alert.state, alert.assigned_to, alert.resolved_by) == ("open", None, None)
    assert store.track_labels() == {} and [z.name for z in store.zones()] == ["wadi"]
    assert store.border().points == BORDER and store.tokens() == []


# -- what HQ on several machines relies on ---------------------------------------------------


def test_two_writers_given_the_same_batches_store_each_once(backend):
    first, second = backend.open(), backend.open()  # two HQ writers on one database
    batches = [a_batch(seq, [a_track(seq % 7, 100.0 + seq)]) for seq in range(60)]
    results: dict[str, list[bool]] = {}

    def write(name, store, order):
        results[name] = [store.commit_ingest_many([batches[k] for k in order[i:i + 5]])
                         for i in range(0, len(order), 5)]

    order = list(range(60))
    threads = [threading.Thread(target=write, args=("a", first, order)),
               threading.Thread(target=write, args=("b", second, order[::-1]))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = sum(sum(map(sum, results[name])) for name in ("a", "b"))
    assert took == 60  # every batch taken by exactly one writer
    assert backend.count("seen_batches") == 60 and backend.count("track_points") == 60
    [node] = first.nodes()
    assert (node.last_seq, node.batches) == (59, 60)
    assert {t.global_id: t.time for t in first.current_tracks()} == {
        gid: 100.0 + max(s for s in range(60) if s % 7 == gid) for gid in range(7)}
    first.close()
    second.close()


def test_changes_since_a_cursor_give_every_changed_track_and_alert(store):
    start = store.changes_since(0)
    assert len(start.tracks) == 0 and start.alerts == []
    store.commit_ingest(a_batch(1, [a_track(1, 100.0), a_track(2, 100.0)],
                                alerts=[an_alert("a-1")]))  # fmt: skip
    first = store.changes_since(start.cursor)
    assert sorted(first.tracks.global_id.tolist()) == [1, 2]
    assert [a.alert.alert_id for a in first.alerts] == ["a-1"]
    store.commit_ingest(a_batch(2, [a_track(2, 110.0, lat=23.0)]))
    later = store.changes_since(first.cursor)
    assert later.tracks.global_id.tolist() == [2] and later.tracks.lat.tolist() == [23.0]
    store.acknowledge_alert("a-1", "operator-ana", 120.0)  # operators' changes count too
    acked = store.changes_since(later.cursor)
    assert [(a.alert.alert_id, a.state) for a in acked.alerts] == [("a-1", "acknowledged")]
    everything = store.changes_since(0)
    assert sorted(everything.tracks.global_id.tolist()) == [1, 2]


def test_a_commit_that_ends_after_a_cursor_was_taken_is_not_missed(backend, store):
    if backend.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: commits end in the order they begin")
    import psycopg

    store.commit_ingest(a_batch(1, [a_track(1, 100.0)]))
    slow = psycopg.connect(backend.location)  # a writer that began first and ends last
    slow.execute("UPDATE fused_tracks SET lat = 21.0, changed = pg_current_xact_id()::text::bigint"
                 " WHERE global_id = 1")  # fmt: skip
    store.commit_ingest(a_batch(2, [a_track(2, 100.0)]))
    seen = store.changes_since(0)
    assert sorted(seen.tracks.global_id.tolist()) == [1, 2]
    assert seen.tracks.lat.tolist()[0] == 22.8  # the slow writer's change is not visible yet
    slow.commit()
    slow.close()
    after = store.changes_since(seen.cursor)
    assert 1 in after.tracks.global_id.tolist()
    lat_of = dict(zip(after.tracks.global_id.tolist(), after.tracks.lat.tolist(), strict=True))
    assert lat_of[1] == 21.0


def test_history_in_a_box_and_a_window_is_exactly_the_points_inside(store):
    rng = random.Random(11)
    points = [HistoryPoint(gid, float(t), rng.uniform(22, 23), rng.uniform(14, 15),
                           *[0.0] * 7) for gid in range(20) for t in range(0, 600, 7)]
    store.commit_ingest(IngestBatch(received=1.0, history=points))
    for _ in range(20):
        south, north = sorted(rng.uniform(21.9, 23.1) for _ in range(2))
        west, east = sorted(rng.uniform(13.9, 15.1) for _ in range(2))
        t0, t1 = sorted(rng.uniform(-10, 610) for _ in range(2))
        box = BBox(south, west, north, east)
        found = store.history_in_box(box, t0, t1)
        expected = sorted((p.global_id, p.time) for p in points if t0 <= p.time <= t1
                          and south <= p.lat <= north and west <= p.lon <= east)  # fmt: skip
        assert list(zip(found.global_id.tolist(), found.time.tolist(), strict=True)) == expected
    assert list(store.history_in_box(BBox(22, 14, 23, 15), 0, 0)) == [
        p for p in points if p.time == 0.0]  # fmt: skip
