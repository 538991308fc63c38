"""HQ as a process against a real mosquitto: two posts that see the same walkers become one
picture; junk becomes dead letters without stopping anything; kill -9 loses nothing."""

import getpass
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from wire import topics
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, encode

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


def start_hq(config, passwords):
    """HQ as a process, once it has subscribed (its first session is new: the broker
    keeps nothing for it before that)."""
    hq = subprocess.Popen(
        [sys.executable, "-m", "hq", "run", "--config", str(config)],
        env={**os.environ, "HQ_MQTT_PASSWORD": passwords["hq"]},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    hq.lines = []
    subscribed = threading.Event()

    def read():
        for line in hq.stdout:
            hq.lines.append(line)
            if "ingest connected" in line:
                subscribed.set()

    threading.Thread(target=read, daemon=True).start()
    assert subscribed.wait(60), "".join(hq.lines)
    time.sleep(0.5)
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
        future = encode(batch("west-1", 99, rng, start)).replace(b'"1.0"', b'"9.0"', 1)
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
        hq.send_signal(signal.SIGTERM)
        hq.wait(timeout=30)
        for client in clients.values():
            client.loop_stop()
    assert hq.returncode == 0, "".join(hq.lines)
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


def test_kill_9_of_hq_mid_stream_loses_nothing_and_stores_nothing_twice(deployment):
    tmp_path, port, passwords, config, _ = deployment
    hq = start_hq(config, passwords)
    west = publisher("west-1", port, passwords)
    rng = np.random.default_rng(4)
    start = time.time()
    db = tmp_path / "hq.db"
    try:
        for seq in range(60):
            west.publish(topics.tracks("tummo", "west-1"), encode(batch("west-1", seq, rng, start)),
                         qos=1).wait_for_publish()  # fmt: skip
            if seq == 30:
                wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 10)
                hq.kill()  # mid-stream: the broker keeps the session and what was not acked
                hq.wait()
        hq = start_hq(config, passwords)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 60) == 60
    finally:
        hq.send_signal(signal.SIGTERM)
        hq.wait(timeout=30)
        west.loop_stop()
    with sqlite3.connect(db) as conn:
        seqs = sorted(s for (s,) in conn.execute("SELECT seq FROM seen_batches"))
        ids = [g for (g,) in conn.execute("SELECT global_id FROM fused_tracks")]
    assert seqs == list(range(60))
    # Global ids after the restart continue; none is given to two tracks.
    assert len(ids) == len(set(ids))
