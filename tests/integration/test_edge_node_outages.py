"""The edge node as a process on the small scenario played live (its drone's telemetry
over UDP, its thermal camera as MJPEG), its uplink through a link that goes quiet for
60 s, and a kill -9 of the node during the outage. HQ's view is a subscriber on the
broker itself: every batch the node made arrives, exactly once after de-duplication by
seq, each lane in order; the restarted node numbers on; the tracks lie on the truth."""

import getpass
import json
import sqlite3
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hq.broker import BrokerProcess, free_tcp_port, username, write_broker_config
from hq.ingest.delivery import DeliveryAcks
from sim_hw.live import LiveCamera, LiveScenario
from sim_hw.scenario import load_config
from stack.config_files import write_config
from stack.deployment import node_config
from stack.process import Service, free_udp_port
from tests.conftest import PROJECT_ROOT
from tests.tcp_relay import TcpRelay
from wire.messages import TrackBatch, decode

pytestmark = pytest.mark.integration

CUT_S = 60.0
KILL_AFTER_S = 40.0  # into the cut: the outbox holds a backlog when the node dies
SCENARIO_PATH = PROJECT_ROOT / "configs" / "scenarios" / "small.toml"
SCENARIO = load_config(SCENARIO_PATH)
SITE, POST = SCENARIO.name, SCENARIO.posts[0]


class Hq:
    """Subscribes as HQ does, keeps every TrackBatch with its arrival time and confirms each
    to the node as HQ does after its commit (hq/ingest/delivery.py)."""

    def __init__(self, port, password):
        self.arrivals: list[tuple[float, bytes, TrackBatch]] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.acks = DeliveryAcks(lambda t, p: self.client.publish(t, p, qos=1, retain=True))
        self.client.username_pw_set("hq", password)
        self.client.on_connect = lambda c, *_: c.subscribe("dunewatch/v1/+/+/tracks", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        batch = decode(message.payload)
        with self.changed:
            self.arrivals.append((time.time(), bytes(message.payload), batch))
            self.changed.notify_all()
        self.acks.committed(f"{batch.site}/{batch.node}", batch.seq)
        self.acks.flush()

    def wait_for(self, predicate, timeout):
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.arrivals), timeout)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def start_node(config, password) -> Service:
    # Warming the kernels takes tens of seconds on a cold cache (a fresh clone).
    return (
        Service("node", ["edge", "run", "--config", str(config)], {"NODE_MQTT_PASSWORD": password})
        .start()
        .wait_for_line("node running")
    )


def test_link_cut_and_kill_9_lose_no_batch_and_the_tracks_follow_the_truth(tmp_path):
    broker_port = free_tcp_port()
    passwords = write_broker_config(tmp_path / "broker", [(SITE, POST.name)],
                                    port=broker_port, bind="127.0.0.1",
                                    run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", broker_port).start()
    relay = TcpRelay(broker_port).start()
    mavlink_port = free_udp_port()
    camera = LiveCamera(sysid=1, port=free_tcp_port(), mode="thermal", width=640, height=360,
                        fps=10.0, lighting="night")  # fmt: skip
    config = write_config(tmp_path / "node.toml",
                          node_config(SITE, POST, relay.port, tmp_path / "outbox.db",
                                      [f"udpin:127.0.0.1:{mavlink_port}"], [camera],
                                      status_period_s=2.0), "the node under test")  # fmt: skip
    hq = Hq(broker_port, passwords["hq"])
    password = passwords[username(SITE, POST.name)]
    first = second = None
    # Scenario time 45 s now: walkers set off at 50 s, all of them in the camera's view.
    live = LiveScenario(SCENARIO_PATH, tmp_path / "sim", skip_s=45.0,
                        mavlink={1: f"udpout:127.0.0.1:{mavlink_port}"},
                        cameras=[camera])  # fmt: skip
    try:
        first = start_node(config, password)
        live.start()
        with_tracks = lambda arrivals: sum(bool(b.tracks) for *_, b in arrivals) >= 10  # noqa: E731
        assert hq.wait_for(with_tracks, timeout=90), (live.failed(), first.tail())

        cut_at = time.time()
        relay.cut()
        time.sleep(KILL_AFTER_S)
        first.kill()  # kill -9, with a backlog in the outbox
        killed_at = time.time()
        second = start_node(config, password)
        time.sleep(max(0.0, cut_at + CUT_S - time.time()))
        relay.restore()
        restored_at = time.time()

        # The backlog drains behind live data (paho's reconnect back-off, then 50 messages
        # a second): wait until no number is missing; then the node stops cleanly, flushing.
        assert hq.wait_for(lambda a: any(b.sent > restored_at + 5.0 for *_, b in a)
                           and _without_gaps(a), 180)  # fmt: skip
        assert second.stop(timeout=60) == 0, second.tail()
        produced, first_seq = _stored_seq(tmp_path / "outbox.db")
        assert _outbox_depth(tmp_path / "outbox.db") == 0
        assert hq.wait_for(lambda a: any(b.seq == produced for *_, b in a), 30)
    finally:
        live.stop()
        for node in (first, second):
            if node is not None:
                node.kill()
        hq.close()
        relay.close()
        broker.kill()

    batches = {}
    for _, payload, batch in hq.arrivals:
        # A seq seen twice is the same batch sent again, never a number used twice.
        assert batches.setdefault(batch.seq, payload) == payload
    # Every batch the node made, from the outbox's first number to its last, arrived.
    assert sorted(batches) == list(range(first_seq, produced + 1))

    # The uplink sends live data at once and the backlog behind it, each oldest first: the
    # arrival order is two increasing runs woven together, never three.
    order = _first_arrivals(hq.arrivals)
    assert _longest_decreasing([b.seq for b in order]) <= 2
    # Both nodes kept tracking through the outage: batches were made all along it.
    made_during = sorted(b.sent for b in order if cut_at < b.sent < restored_at)
    assert len(made_during) >= 2.0 * (CUT_S - 30.0)  # 2 Hz, less the restart
    gaps = np.diff([cut_at, *made_during, restored_at])
    assert gaps.max() < 30.0  # the restart's warm-up is the only pause
    # The restarted node numbers on from the one it replaced.
    killed_seqs = [b.seq for b in order if b.sent < killed_at]
    restarted_seqs = [b.seq for b in order if b.sent > killed_at + 1.0]
    assert min(restarted_seqs) > max(killed_seqs)

    _assert_tracks_follow_truth(order, live.truth_path)


def _first_arrivals(arrivals) -> list[TrackBatch]:
    seen, order = set(), []
    for _, _, batch in arrivals:
        if batch.seq not in seen:
            seen.add(batch.seq)
            order.append(batch)
    return order


def _without_gaps(arrivals) -> bool:
    seqs = {batch.seq for *_, batch in arrivals}
    return max(seqs) - min(seqs) + 1 == len(seqs)


def _longest_decreasing(values) -> int:
    """Length of the longest strictly decreasing subsequence (O(n²), n is small)."""
    longest = [1] * len(values)
    for j in range(len(values)):
        for i in range(j):
            if values[i] > values[j]:
                longest[j] = max(longest[j], longest[i] + 1)
    return max(longest, default=0)


def _stored_seq(outbox) -> tuple[int, int]:
    """The last batch number the outbox handed out, and its first."""
    with sqlite3.connect(outbox) as db:
        counters = dict(db.execute("SELECT name, value FROM counters"))
    return counters["seq"], counters["first_seq"]


def _outbox_depth(outbox) -> int:
    with sqlite3.connect(outbox) as db:
        return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def _assert_tracks_follow_truth(batches, truth_path):
    """Nearly every confirmed track report lies within 8 m of a true target at the track's
    time, and the batches together follow at least three different targets."""
    rows = [json.loads(line) for line in open(truth_path)][1:]
    times = np.array([row["t"] for row in rows])
    followed, misses, reports = set(), {}, 0
    for batch in batches:
        for track in batch.tracks:
            k = int(np.argmin(np.abs(times - track.time)))
            targets = rows[k]["targets"]
            # Truth rows are 0.5 s apart: move each target to the track's time.
            dt = track.time - rows[k]["t"]
            where = np.array([[t["enu"][0] + dt * t["velocity_enu"][0],
                               t["enu"][1] + dt * t["velocity_enu"][1]]
                              for t in targets]).reshape(-1, 2)  # fmt: skip
            distance = np.linalg.norm(where - np.array(track.position_enu), axis=1)
            reports += 1
            if distance.size and distance.min() < 8.0:
                followed.add(targets[int(np.argmin(distance))]["id"])
            else:
                misses[track.track_id] = misses.get(track.track_id, 0) + 1
    assert reports > 50 and len(followed) >= 3, (reports, followed)
    assert sum(misses.values()) <= 0.05 * reports, (reports, misses)
