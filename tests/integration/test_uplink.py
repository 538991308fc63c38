"""The uplink against a real mosquitto with the project's ACL: delivery, store and forward,
birth and will, and one node unable to speak for another."""

import subprocess
import sys
import threading
import time
from importlib.metadata import version

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.outbox import Outbox
from edge.uplink import Uplink, UplinkConfig
from hq.ingest.delivery import DeliveryAcks
from wire import delivery, topics
from wire.messages import NodeStatus, TrackBatch, decode, encode

pytestmark = pytest.mark.integration

class Listener:
    """HQ's side: a persistent MQTT v5 session on every node's topics, collecting payloads."""

    def __init__(self, broker, user="hq", subscription="dunewatch/v1/#", persistent=False):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{user}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(user, broker.passwords[user])
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        properties = None
        if persistent:  # as HQ: the broker keeps the session and queues while it is away
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", broker.port, clean_start=not persistent,
                            properties=properties)  # fmt: skip
        self.client.loop_start()
        self.subscribed.wait(10)

    def _on_message(self, client, userdata, message):
        with self.arrived:
            self.messages.append((message.topic, message.payload, message.retain))
            self.arrived.notify_all()

    def wait_for(self, predicate, timeout=20.0):
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self.messages), timeout=timeout)

    def batches(self):
        return [decode(p) for t, p, _ in self.messages if t.endswith("/tracks")]

    def statuses(self):
        return [(decode(p), retained) for t, p, retained in self.messages
                if t.endswith("/status")]  # fmt: skip

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def node_uplink(broker, outbox_path, site="tummo", node="west-1", **settings):
    config = UplinkConfig(site=site, node=node, port=broker.port, username=f"{site}.{node}",
                          password=broker.passwords[f"{site}.{node}"], reconnect_max_s=1.0,
                          **settings)  # fmt: skip
    return Uplink(config, Outbox(outbox_path, first_seq=0))


def a_batch(outbox, site="tummo", node="west-1"):
    return TrackBatch(site=site, node=node, seq=outbox.next_seq(), sent=time.time(),
                      frame_origin=(22.84, 14.13, 620.0), tracks=[])  # fmt: skip


def wait_until(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def send_batches(uplink, count):
    for _ in range(count):
        batch = a_batch(uplink.outbox)
        uplink.send(topics.tracks(batch.site, batch.node), encode(batch))


def test_batches_arrive_in_order_and_leave_the_outbox(broker, tmp_path):
    listener = Listener(broker)
    uplink = node_uplink(broker, tmp_path / "outbox.db")
    uplink.start()
    # Connected first: what is stored before a connect is backlog, and may follow live data.
    assert wait_until(lambda: uplink.counters.connected)
    send_batches(uplink, 50)
    assert listener.wait_for(lambda m: len([x for x in m if x[0].endswith("/tracks")]) == 50)
    assert [b.seq for b in listener.batches()] == list(range(50))
    deadline = time.monotonic() + 5
    while uplink.outbox.depth() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uplink.outbox.depth() == 0 and uplink.counters.acknowledged == 50
    uplink.stop()
    listener.close()


def test_birth_on_connect_and_offline_on_a_clean_stop_both_retained(broker, tmp_path):
    uplink = node_uplink(broker, tmp_path / "outbox.db")
    uplink.start()
    assert Listener(broker).wait_for(lambda m: any(t.endswith("/status") for t, *_ in m))
    uplink.stop()
    # A listener that connects afterwards gets the retained state: offline.
    late = Listener(broker)
    assert late.wait_for(lambda m: any(t.endswith("/status") for t, *_ in m))
    status, retained = late.statuses()[-1]
    assert status.state == "offline" and retained
    late.close()


def test_a_killed_node_leaves_its_last_will(broker, tmp_path):
    script = tmp_path / "node.py"
    script.write_text(
        "import sys, time\n"
        "from edge.outbox import Outbox\n"
        "from edge.uplink import Uplink, UplinkConfig\n"
        f"config = UplinkConfig(site='tummo', node='west-1', port={broker.port},\n"
        f"    username='tummo.west-1', password={broker.passwords['tummo.west-1']!r},\n"
        "    keepalive_s=1)\n"
        f"uplink = Uplink(config, Outbox({str(tmp_path / 'outbox.db')!r}, first_seq=0))\n"
        "uplink.start()\n"
        "while not uplink.counters.connected: time.sleep(0.02)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    listener = Listener(broker)
    node = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert node.stdout.readline().strip() == "up"
    assert listener.wait_for(lambda m: any(b"birth" in p for _, p, _ in m))
    node.kill()
    node.wait()
    assert listener.wait_for(lambda m: any(b'"offline"' in p for _, p, _ in m), timeout=10)
    status, _ = listener.statuses()[-1]
    assert isinstance(status, NodeStatus) and status.state == "offline"
    assert status.software_version == version("dunewatch")  # the installed package's
    listener.close()


def test_nothing_is_lost_across_a_broker_restart(broker, tmp_path):
    listener = Listener(broker, persistent=True)
    uplink = node_uplink(broker, tmp_path / "outbox.db", drain_rate=200.0)
    uplink.start()
    send_batches(uplink, 30)
    assert listener.wait_for(lambda m: len(listener.batches()) >= 30)
    broker.stop()  # saves its store, HQ's session with it
    send_batches(uplink, 70)  # the node goes on while the link is down
    time.sleep(0.5)
    assert uplink.outbox.depth() >= 70
    broker.start()
    send_batches(uplink, 20)  # live data after the reconnect
    assert listener.wait_for(lambda m: {b.seq for b in listener.batches()} >= set(range(120)),
                             timeout=30)  # fmt: skip
    uplink.stop()
    listener.close()
    # Every batch arrives; by (node, seq), exactly once after de-duplication, none extra.
    assert {b.seq for b in listener.batches()} == set(range(120))
    assert uplink.outbox.depth() == 0


def test_the_backlog_drains_at_its_bounded_rate_behind_live_data(broker, tmp_path):
    outbox_path = tmp_path / "outbox.db"
    stored = Outbox(outbox_path, first_seq=0)
    for _ in range(100):  # a backlog from an outage, already on disk at start-up
        batch = a_batch(stored)
        stored.put(topics.tracks("tummo", "west-1"), encode(batch))
    stored.close()
    listener = Listener(broker)
    uplink = node_uplink(broker, outbox_path, drain_rate=50.0)
    uplink.start()
    time.sleep(0.5)
    send_batches(uplink, 1)  # one live batch, seq 100
    assert listener.wait_for(lambda m: len(listener.batches()) >= 101, timeout=20)
    received = listener.batches()
    arrival = [b.seq for b in received]
    assert sorted(arrival) == list(range(101))
    # The live batch overtook most of the backlog, and the backlog kept its order.
    assert arrival.index(100) < 60
    backlog = [s for s in arrival if s < 100]
    assert backlog == sorted(backlog)
    uplink.stop()
    listener.close()


def send_numbered_batches(uplink, count, site="tummo", node="west-1"):
    for _ in range(count):
        uplink.send_numbered(topics.tracks(site, node), lambda seq: encode(TrackBatch(
            site=site, node=node, seq=seq, sent=time.time(),
            frame_origin=(22.84, 14.13, 620.0), tracks=[])))  # fmt: skip


def connected_client(broker, user, client_id):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, broker.passwords[user])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_a_batch_leaves_the_outbox_only_when_hq_confirms_it(broker, tmp_path):
    listener = Listener(broker)  # takes every batch, confirms none
    uplink = node_uplink(broker, tmp_path / "outbox.db", confirm_timeout_s=1.0)
    uplink.start()
    send_numbered_batches(uplink, 10)
    assert listener.wait_for(lambda m: len(listener.batches()) >= 10)
    assert wait_until(lambda: uplink.counters.acknowledged >= 10)
    assert uplink.outbox.depth() == 10  # the broker's PUBACK deleted none of them
    # Unconfirmed past the timeout: all ten are sent again.
    assert listener.wait_for(lambda m: len(listener.batches()) >= 20, timeout=15)
    assert uplink.counters.resend_rounds >= 1

    # A node cannot confirm its own batches (nor hear another's confirmations): the ACL
    # keeps the delivered topics to HQ's account.
    forged = delivery.encode(delivery.Delivered(site="tummo", node="west-1", time=time.time(),
                                                ranges=[(0, 9)]))  # fmt: skip
    east = connected_client(broker, "tummo.east-1", "east")
    overheard = []
    east.on_message = lambda c, u, m: overheard.append(m.topic)
    east.subscribe(topics.delivered("tummo", "west-1"), qos=1)
    # (Under west-1's own account: the broker makes its client id the account's, so this
    # connection takes the uplink's place for a moment, and the uplink reconnects.)
    west = connected_client(broker, "tummo.west-1", "west-forger")
    west.publish(topics.delivered("tummo", "west-1"), forged, qos=1).wait_for_publish(5)
    west.loop_stop()
    west.disconnect()
    assert wait_until(lambda: uplink.counters.connected)
    time.sleep(1.0)
    assert uplink.outbox.depth() == 10 and uplink.counters.confirmed == 0

    # HQ's account confirms 0..6: those go, 7..9 stay.
    hq = listener.client
    acks = DeliveryAcks(lambda t, p: hq.publish(t, p, qos=1, retain=True))
    for seq in range(7):
        acks.committed("tummo/west-1", seq)
    acks.flush()
    assert wait_until(lambda: uplink.outbox.depth() == 3)
    assert [m.seq for m in uplink.outbox.after(0)] == [7, 8, 9]
    assert uplink.counters.confirmed == 7
    time.sleep(0.5)
    assert overheard == []  # east-1 heard none of west-1's confirmations
    for client in (east,):
        client.loop_stop()
        client.disconnect()
    uplink.stop(flush_timeout_s=0.1)
    listener.close()


def test_a_node_cannot_publish_or_read_as_another(broker):
    listener = Listener(broker)
    intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="west-as-east",
                           protocol=mqtt.MQTTv5)  # fmt: skip
    intruder.username_pw_set("tummo.west-1", broker.passwords["tummo.west-1"])
    overheard = []
    intruder.on_message = lambda c, u, m: overheard.append(m.topic)
    intruder.connect("127.0.0.1", broker.port)
    intruder.loop_start()
    intruder.subscribe("dunewatch/v1/#", qos=1)
    forged = intruder.publish(topics.tracks("tummo", "east-1"), b"{}", qos=1)
    own = intruder.publish(topics.alerts("tummo", "west-1"), b"own", qos=1)
    forged.wait_for_publish(5)
    own.wait_for_publish(5)
    # The real east-1 publishes; west-1 must not hear it.
    east = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="east", protocol=mqtt.MQTTv5)
    east.username_pw_set("tummo.east-1", broker.passwords["tummo.east-1"])
    east.connect("127.0.0.1", broker.port)
    east.loop_start()
    east.publish(topics.tracks("tummo", "east-1"), b"east", qos=1).wait_for_publish(5)
    assert listener.wait_for(lambda m: any(p == b"east" for _, p, _ in m))
    assert listener.wait_for(lambda m: any(p == b"own" for _, p, _ in m))
    time.sleep(0.3)
    assert not [p for _, p, _ in listener.messages if p == b"{}"]  # the forgery never arrived
    assert overheard == []
    for client in (intruder, east):
        client.loop_stop()
        client.disconnect()
    listener.close()


def test_a_wrong_password_is_refused(broker):
    refused = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("tummo.west-1", "not-the-password")
    client.on_connect = lambda c, u, f, reason, p: reason.is_failure and refused.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert refused.wait(5)
    client.loop_stop()
