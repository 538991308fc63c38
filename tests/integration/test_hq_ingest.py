"""HQ as a process against a real mosquitto: two posts that see the same walkers become one
picture; junk becomes dead letters without stopping anything; kill -9 loses nothing."""

import getpass
import sqlite3
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from stack.process import Service
from wire import topics
from wire.geo import EnuFrame
from wire.messages import SCHEMA_VERSION, Track, TrackBatch, encode

pytestmark = pytest.mark.integration

POSTS = {"west-1": EnuFrame(22.84, 14.13, 620.0), "east-1": EnuFrame(22.86, 14.25, 620.0)}
# Five walkers between the posts, seen by both, each post with its own noise.
WALKERS = np.array([[5000.0 + 300 * k, 800.0 - 150 * k] for k in range(5)])
VELOCITY = np.array([0.3, 1.3])


def batch(node: str, seq: int, rng, start: float) -> TrackBatch:
    """Batch `seq` of `node`, one second after the last; `start` is the wall-clock time of
    seq 0, since HQ ages its tracks by the wall clock."""
    frame, origin = POSTS[node], POSTS["west-1"]
    t = start + seq
    tracks = []
    for k, start in enumerate(WALKERS):
        east, north = start + VELOCITY * seq + rng.normal(0, 2.0, 2)
        lat, lon, _ = origin.to_geodetic(east, north, 0.0)
        local = frame.from_geodetic(lat, lon, frame.alt)
        tracks.append(Track(
            track_id=k + 1, time=t, lat=float(lat), lon=float(lon), alt=frame.alt,
            position_enu=(float(local[0]), float(local[1])), velocity_enu=tuple(VELOCITY),
            position_covariance=[[4.0, 0.0], [0.0, 4.0]],
            velocity_covariance=[[0.25, 0.0], [0.0, 0.25]],
            target_class="person", status="confirmed", quality=0.99, hits=10 + seq,
        ))  # fmt: skip
    return TrackBatch(site="tummo", node=node, seq=seq, sent=t,
                      frame_origin=(frame.lat, frame.lon, frame.alt), tracks=tracks)  # fmt: skip


@pytest.fixture
def deployment(tmp_path):
    port = free_tcp_port()
    nodes = [("tummo", n) for n in POSTS]
    passwords = write_broker_config(tmp_path / "broker", nodes, port=port, bind="127.0.0.1",
                                    run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", port).start()
    config = tmp_path / "hq.toml"
    config.write_text(f"""
origin = [22.84, 14.13, 620.0]
border = [[23.52, 11.99], [22.79, 14.22], [23.00, 15.00]]
home = [22.84, 14.13]
database = "{tmp_path / 'hq.db'}"
[broker]
port = {port}
password = {{ env = "HQ_MQTT_PASSWORD" }}
""")
    yield tmp_path, port, passwords, config, broker
    broker.kill()


def start_hq(config, passwords) -> Service:
    """HQ as a process, once it runs and has subscribed (its first session is new: the
    broker keeps nothing for it before that). On a cold Numba cache HQ compiles its
    kernels before it starts."""
    hq = Service("hq", ["hq", "run", "--config", str(config)],
                 {"HQ_MQTT_PASSWORD": passwords["hq"]}).start()
    hq.wait_for_line("HQ running").wait_for_line("ingest connected")
    time.sleep(0.5)  # the subscription reaches the broker right after the connection
    return hq


def publisher(node, port, passwords):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{node}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.username_pw_set(f"tummo.{node}", passwords[f"tummo.{node}"])
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def wait_for_rows(db, sql, expected, timeout=60.0):
    deadline = time.monotonic() + timeout
    count = None
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                count = conn.execute(sql).fetchone()[0]
            if count >= expected:
                return count
        except sqlite3.OperationalError:
            pass  # HQ has not created its tables yet
        time.sleep(0.2)
    return count


def test_two_posts_fuse_into_one_picture_and_junk_is_dead_lettered(deployment):
    tmp_path, port, passwords, config, _ = deployment
    hq = start_hq(config, passwords)
    clients = {node: publisher(node, port, passwords) for node in POSTS}
    rng = np.random.default_rng(3)
    start = time.time()
    try:
        west = clients["west-1"]
        west.publish(topics.tracks("tummo", "west-1"), b"\x00garbage", qos=1).wait_for_publish()
        forged = batch("east-1", 0, rng, start)  # east-1's batch on west-1's topic
        west.publish(topics.tracks("tummo", "west-1"), encode(forged), qos=1).wait_for_publish()
        future = encode(batch("west-1", 99, rng, start)).replace(
            f'"{SCHEMA_VERSION}"'.encode(), b'"9.0"', 1)
        west.publish(topics.tracks("tummo", "west-1"), future, qos=1).wait_for_publish()
        for seq in range(20):
            for node, client in clients.items():
                message = encode(batch(node, seq, rng, start))
                client.publish(topics.tracks("tummo", node), message, qos=1).wait_for_publish()
        # One batch again, as an edge does after a reconnect.
        again = encode(batch("west-1", 5, rng, start))
        west.publish(topics.tracks("tummo", "west-1"), again, qos=1).wait_for_publish()
        db = tmp_path / "hq.db"
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 40) == 40
        assert wait_for_rows(db, "SELECT COUNT(*) FROM dead_letters", 3) == 3
    finally:
        stopped = hq.stop()
        for client in clients.values():
            client.loop_stop()
    assert stopped == 0, hq.tail()
    with sqlite3.connect(db) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters")]
        live = conn.execute("SELECT COUNT(*) FROM fused_tracks WHERE status != 'ended'")
        fused_live = live.fetchone()[0]
        node_tracks = conn.execute("SELECT COUNT(*) FROM node_tracks").fetchone()[0]
    assert any("unsupported version" in r for r in reasons)
    assert any("on tummo/west-1's topic" in r for r in reasons)
    assert node_tracks == 10
    # Five walkers, seen by two posts: five fused tracks, not ten.
    assert fused_live == 5


def stream(client, node, seqs, rng, start, pause_s, published):
    """Publish batches `seqs` of `node` at QoS 1, `pause_s` apart, as an edge does."""
    for seq in seqs:
        message = encode(batch(node, seq, rng, start))
        client.publish(topics.tracks("tummo", node), message, qos=1).wait_for_publish(30)
        published.append(seq)
        time.sleep(pause_s)


def test_kill_9_of_hq_mid_stream_loses_nothing_and_stores_nothing_twice(deployment):
    tmp_path, port, passwords, config, _ = deployment
    db, n = tmp_path / "hq.db", 200
    hq = start_hq(config, passwords)
    west = publisher("west-1", port, passwords)
    published = []
    sender = threading.Thread(target=stream, args=(west, "west-1", range(n),
                                                   np.random.default_rng(4), time.time(),
                                                   0.01, published))  # fmt: skip
    sender.start()
    try:
        wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", n // 4)
        # Another writer holds the database: HQ's next commit waits (within its busy
        # timeout) while batches keep arriving, so the kill finds many received and not
        # committed, hence not acknowledged.
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        published_at_lock = len(published)
        time.sleep(1.5)
        hq.kill()
        blocker.close()
        received_uncommitted = len(published) - published_at_lock
        stored_at_kill = wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 0)
        time.sleep(1.0)  # the post goes on publishing; the broker queues for HQ's session
        hq = start_hq(config, passwords)
        sender.join(120)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", n, timeout=120) == n
    finally:
        stopped = hq.stop()
        west.loop_stop()
    assert n // 4 <= stored_at_kill < n and received_uncommitted >= 20  # mid-stream
    assert stopped == 0, hq.tail()
    with sqlite3.connect(db) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM seen_batches ORDER BY seq")]
        positions = conn.execute("SELECT batches, last_seq FROM ingest_positions").fetchall()
        hits = {h for (h,) in conn.execute("SELECT json_extract(track, '$.hits') "
                                           "FROM node_tracks")}  # fmt: skip
        points = conn.execute("SELECT COUNT(*), COUNT(DISTINCT time) FROM track_points")
        n_points, n_times = points.fetchone()
        ids = [g for (g,) in conn.execute("SELECT global_id FROM fused_tracks")]
        letters = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    assert seqs == list(range(n))  # every batch, each once
    # Committed once each: a batch written twice would count twice here.
    assert positions == [(n, n - 1)]
    assert hits == {10 + n - 1}  # node tracks hold the last batch's state
    # Five walkers, one point each per second of the stream: none lost, none twice.
    assert n_times == n and n_points == 5 * n
    assert len(ids) == len(set(ids)) and letters == 0
