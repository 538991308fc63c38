"""HQ ingest's group commit on a real SQLite file: many messages, one transaction, each
batch once; `on_commit` sees every committed batch after its commit, ended tracks
included, and a failing listener or a refused batch never stops the others."""

import gc
import sqlite3
import threading
import time

import pytest

from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, NodeHealthDetector
from hq.fusion import Fusion, FusionConfig
from hq.ingest import Ingest, Received
from hq.ingest.client import GroupWriter
from hq.store.records import IngestBatch
from hq.store.sql.reads import FUSED_COLUMNS
from hq.store.sqlite import SqliteStore
from wire import topics
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, encode

pytestmark = pytest.mark.unit
ORIGIN = (22.84, 14.13, 620.0)
FRAME = EnuFrame(*ORIGIN)
START = 1.8e9  # UTC s of seq 0


def make_ingest(db, on_commit=None) -> Ingest:
    alerts = AlertConfig(border=((23.52, 11.99), (22.79, 14.22), (23.00, 15.00)),
                         home=ORIGIN[:2])  # fmt: skip
    return Ingest(SqliteStore(db), Fusion(FusionConfig(origin=ORIGIN)),
                  CrossingDetector(alerts, FRAME), DistressDetector(alerts, FRAME),
                  NodeHealthDetector(alerts), on_commit=on_commit)  # fmt: skip


def track_batch(seq: int, node: str = "post-1", n_tracks: int = 4) -> TrackBatch:
    """Walkers 200 m apart, 1 m further north each second; batch `seq` is second `seq`."""
    t = START + seq
    tracks = []
    for k in range(n_tracks):
        east, north = 3000.0 + 200.0 * k, 2000.0 + 1.0 * seq
        lat, lon, _ = FRAME.to_geodetic(east, north, 0.0)
        tracks.append(Track(
            track_id=k + 1, time=t, lat=float(lat), lon=float(lon), alt=FRAME.alt,
            position_enu=(east, north), velocity_enu=(0.0, 1.0),
            position_covariance=[[4.0, 0.0], [0.0, 4.0]],
            velocity_covariance=[[0.25, 0.0], [0.0, 0.25]],
            target_class="person", status="confirmed", quality=0.9, hits=5 + seq,
        ))  # fmt: skip
    return TrackBatch(site="tummo", node=node, seq=seq, sent=t, frame_origin=ORIGIN,
                      tracks=tracks)  # fmt: skip


def received(batch: TrackBatch) -> Received:
    return Received(topics.tracks(batch.site, batch.node), encode(batch), batch.sent)


def query(db, sql):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_a_group_is_one_transaction_and_a_repeat_within_it_is_stored_once(tmp_path):
    db = tmp_path / "hq.db"
    ingest = make_ingest(db)
    group = [received(track_batch(seq)) for seq in (0, 1, 2)] + [received(track_batch(1))]
    assert ingest.handle_many(group) == ["stored", "stored", "stored", "duplicate"]
    assert ingest.counters.groups == 1
    assert query(db, "SELECT seq FROM seen_batches ORDER BY seq") == [(0,), (1,), (2,)]
    # Counted once per committed batch: a second write of seq 1 would make this 4.
    assert query(db, "SELECT batches, last_seq FROM ingest_positions") == [(3, 2)]
    # Each of the 4 walkers: 3 history points (seconds 0, 1, 2), and its newest state.
    assert query(db, "SELECT COUNT(*) FROM track_points") == [(12,)]
    assert query(db, "SELECT COUNT(*), MIN(time), MAX(time) FROM fused_tracks") == [
        (4, START + 2, START + 2)]  # fmt: skip
    assert query(db, "SELECT COUNT(*), MIN(time) FROM node_tracks") == [(4, START + 2)]
    # A repeat in a later group is caught by the store's record.
    assert ingest.handle_many([received(track_batch(2))]) == ["duplicate"]


def test_a_group_leaves_the_same_database_as_one_message_at_a_time(tmp_path):
    messages = [received(track_batch(seq, node)) for seq in range(6) for node in ("a", "b")]
    one_by_one, grouped = make_ingest(tmp_path / "one.db"), make_ingest(tmp_path / "group.db")
    for message in messages:
        one_by_one.handle_many([message])
    grouped.handle_many(messages)
    tables = ["fused_tracks", "track_points", "node_tracks", "seen_batches", "ingest_positions"]
    for table in tables:
        # Every column but the change cursor's mark, which numbers transactions (12 vs 1).
        columns = {"seen_batches": "node_key, seq",
                   "fused_tracks": ", ".join(FUSED_COLUMNS)}.get(table, "*")
        rows = f"SELECT {columns} FROM {table} ORDER BY 1, 2"
        assert query(tmp_path / "one.db", rows) == query(tmp_path / "group.db", rows), table
    assert one_by_one.counters.groups == len(messages) and grouped.counters.groups == 1


def test_on_commit_gets_each_committed_batch_after_its_commit(tmp_path):
    db = tmp_path / "hq.db"
    seen = []

    def on_commit(batch: IngestBatch) -> None:
        committed = query(db, "SELECT seq FROM seen_batches")  # another connection
        seen.append((batch, committed))

    ingest = make_ingest(db, on_commit)
    assert ingest.handle_many([received(track_batch(0)), received(track_batch(0)),
                               received(track_batch(1))]) == ["stored", "duplicate", "stored"]
    assert [batch.seq for batch, _ in seen] == [0, 1]
    for batch, committed in seen:
        assert (batch.seq,) in committed  # the listener runs once the batch is in the file
        assert [t.status for t in batch.fused_tracks] == ["confirmed"] * 4
        assert len(batch.history) == 4 and len(batch.node_tracks) == 4
    assert [t.track.track_id for t in seen[0][0].node_tracks] == [1, 2, 3, 4]


def test_on_commit_gets_ended_tracks_with_their_last_state(tmp_path):
    db = tmp_path / "hq.db"
    batches = []
    ingest = make_ingest(db, batches.append)
    ingest.handle_many([received(track_batch(0))])
    live = {t.global_id: t for t in batches[0].fused_tracks}
    ingest.tick(START + ingest.fusion.config.end_after + 1)  # no post has seen them since
    (ended_batch,) = batches[1:]
    ended = {t.global_id: t for t in ended_batch.fused_tracks}
    assert set(ended) == set(live)
    for gid, track in ended.items():
        assert track.status == "ended" and track.target_class == "person"
        assert (track.lat, track.lon, track.time) == pytest.approx(
            (live[gid].lat, live[gid].lon, live[gid].time))  # fmt: skip
    assert query(db, "SELECT DISTINCT status FROM fused_tracks") == [("ended",)]


def test_a_failing_listener_is_counted_and_ingest_goes_on(tmp_path):
    db = tmp_path / "hq.db"
    calls = []

    def on_commit(batch: IngestBatch) -> None:
        calls.append(batch.seq)
        if batch.seq == 0:
            raise RuntimeError("the live stream is broken")

    ingest = make_ingest(db, on_commit)
    assert ingest.handle_many([received(track_batch(0)), received(track_batch(1))]) == [
        "stored", "stored"]  # fmt: skip
    assert ingest.handle_many([received(track_batch(2))]) == ["stored"]
    assert calls == [0, 1, 2] and ingest.counters.on_commit_errors == 1
    assert query(db, "SELECT COUNT(*) FROM seen_batches") == [(3,)]


def test_a_batch_the_store_refuses_is_dead_lettered_alone_and_the_group_commits(tmp_path):
    db = tmp_path / "hq.db"
    committed = []
    ingest = make_ingest(db, lambda batch: committed.append(batch.seq))
    # A real fault of the database, for seq 3 only (a trigger, as a poisoned row would be).
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON seen_batches WHEN new.seq = 3 "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")  # fmt: skip
    outcomes = ingest.handle_many([received(track_batch(seq)) for seq in range(8)])
    assert outcomes == ["stored"] * 3 + ["dead_letter"] + ["stored"] * 4
    assert ingest.counters.failed == 0 and ingest.counters.dead_letters == 1
    assert committed == [0, 1, 2, 4, 5, 6, 7]
    assert query(db, "SELECT seq FROM seen_batches ORDER BY seq") == [
        (s,) for s in (0, 1, 2, 4, 5, 6, 7)]  # fmt: skip
    [(reason, payload)] = query(db, "SELECT reason, payload FROM dead_letters")
    assert reason.startswith("not stored") and "refused" in reason
    assert payload == encode(track_batch(3))  # kept for a look and a replay


def test_when_the_store_refuses_everything_nothing_is_acknowledged_and_a_retry_stores_it(
        tmp_path):  # fmt: skip
    db = tmp_path / "hq.db"
    ingest = make_ingest(db)
    # The store refuses every write, dead letters included: it is down, not one batch bad.
    with sqlite3.connect(db) as conn:
        for table in ("seen_batches", "dead_letters"):
            conn.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                         "BEGIN SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
    outcomes = ingest.handle_many([received(track_batch(seq)) for seq in range(6)])
    assert outcomes == ["failed"] * 6 and ingest.counters.failed == 6
    assert query(db, "SELECT COUNT(*) FROM dead_letters") == [(0,)]
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER refuse_seen_batches")
        conn.execute("DROP TRIGGER refuse_dead_letters")
    # Not acknowledged: tried again (by the writer, or the broker after a reconnect), stored.
    assert ingest.handle_many([received(track_batch(seq)) for seq in range(6)]) == ["stored"] * 6
    assert query(db, "SELECT COUNT(*) FROM seen_batches") == [(6,)]


def test_group_writer_tries_a_failed_message_again_until_it_is_committed(tmp_path):
    db = tmp_path / "hq.db"
    ingest = make_ingest(db)
    with sqlite3.connect(db) as conn:
        for table in ("seen_batches", "dead_letters"):
            conn.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                         "BEGIN SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
    reported, stored = [], threading.Event()

    def report(token, outcome) -> None:
        reported.append(outcome)
        if outcome == "stored":
            stored.set()

    writer = GroupWriter(ingest, report, tick_s=None, retry_s=0.2).start()
    try:
        writer.put(received(track_batch(0)), token=0)
        deadline = time.monotonic() + 30
        while reported.count("failed") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TRIGGER refuse_seen_batches")
            conn.execute("DROP TRIGGER refuse_dead_letters")
        assert stored.wait(30)
    finally:
        writer.stop()
    assert reported.count("failed") >= 2 and reported[-1] == "stored"
    assert query(db, "SELECT seq FROM seen_batches") == [(0,)]


def test_group_writer_commits_before_it_reports_and_groups_what_waits(tmp_path):
    db = tmp_path / "hq.db"
    done, all_done = [], threading.Event()
    ingest = make_ingest(db)

    def report(token, outcome) -> None:
        stored = {seq for (seq,) in query(db, "SELECT seq FROM seen_batches")}
        done.append((token, outcome, token in stored))
        if len(done) == 10:
            all_done.set()

    writer = GroupWriter(ingest, report, max_group=4, tick_s=None)
    for seq in range(10):  # all waiting before the writer starts: groups of 4, 4 and 2
        writer.put(received(track_batch(seq)), token=seq)
    writer.start()
    assert all_done.wait(60)
    writer.stop()
    assert [token for token, _, _ in done] == list(range(10))
    assert all(outcome == "stored" and stored for _, outcome, stored in done)
    assert ingest.counters.groups == 3


def test_the_garbage_collector_is_paused_only_while_a_message_is_ingested(tmp_path):
    """Running after every message, also one that fails inside ingest; left alone when
    something else had paused it."""
    ingest = make_ingest(tmp_path / "hq.db")
    running_inside = []
    fuse = ingest.fusion.ingest

    def observed(batch, when):
        running_inside.append(gc.isenabled())
        if batch.seq == 1:
            raise RuntimeError("a fault of ours")
        return fuse(batch, when)

    ingest.fusion.ingest = observed
    assert gc.isenabled()
    outcomes = ingest.handle_many([received(track_batch(0)), received(track_batch(1))])
    assert outcomes == ["stored", "dead_letter"] and running_inside == [False, False]
    assert gc.isenabled()
    gc.disable()
    try:
        assert ingest.handle_many([received(track_batch(2))]) == ["stored"]
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_flood_of_dead_letters_is_stored_and_counted_but_not_logged_line_by_line(
        tmp_path, caplog):  # fmt: skip
    """3,000 junk messages from one post: each is a dead letter in the store and in the
    counter; the log shows the first few and then one in a thousand, so that a hostile post
    cannot turn HQ's log into the flood (at thousands a second it was HQ's main cost)."""
    db = tmp_path / "hq.db"
    ingest = make_ingest(db)
    junk = [Received(topics.tracks("tummo", "post-1"), b"not json %d" % k, START + k / 100.0)
            for k in range(3000)]  # fmt: skip
    with caplog.at_level("WARNING", logger="hq.ingest.ingest"):
        for start in range(0, len(junk), 200):
            assert set(ingest.handle_many(junk[start:start + 200])) == {"dead_letter"}
    assert query(db, "SELECT COUNT(*) FROM dead_letters") == [(3000,)]
    assert ingest.counters.dead_letters == 3000
    logged = [r for r in caplog.records if "dead letter" in r.getMessage()]
    assert len(logged) == 10 + 3  # the first ten, then the 1,000th, 2,000th and 3,000th
    assert "(3000 of this kind from it)" in logged[-1].getMessage()
