"""The broker binds identity to accounts (a real mosquitto with the config
`python -m hq broker-config` writes): a post's account that connects under HQ's client
id, or another post's, neither kicks that client nor discards its persistent session,
and a publish over the size limit reaches nobody."""

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wire import topics

pytestmark = pytest.mark.integration

class Session:
    """An MQTT v5 client that records its connects (with session_present), disconnects and
    messages; persistent (as HQ's) when `expiry_s` is set."""

    def __init__(self, broker, user, client_id, expiry_s=None, subscribe=None):
        self.connects: list[bool] = []
        self.disconnects = 0
        self.messages: list[bytes] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(user, broker.passwords[user])
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.subscription = subscribe
        self.broker, self.expiry_s = broker, expiry_s

    def connect(self):
        properties = None
        if self.expiry_s is not None:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.expiry_s
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", self.broker.port, clean_start=self.expiry_s is None,
                            properties=properties)  # fmt: skip
        self.client.loop_start()
        assert self.wait_for(lambda: self.connects, 10)
        return self

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()

    def reopen(self):
        self.client.reconnect()
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if self.subscription and not flags.session_present:
            client.subscribe(self.subscription, qos=1)
        with self.changed:
            self.connects.append(bool(flags.session_present))
            self.changed.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self.changed:
            self.disconnects += 1
            self.changed.notify_all()

    def _on_message(self, client, userdata, message):
        with self.changed:
            self.messages.append(bytes(message.payload))
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=10.0):
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def publish(session, topic, payload):
    return session.client.publish(topic, payload, qos=1).wait_for_publish(5)


def test_a_post_under_hqs_client_id_neither_kicks_hq_nor_discards_its_session(broker):
    hq = Session(broker, "hq", "hq-ingest", expiry_s=3600, subscribe="dunewatch/v1/#").connect()
    time.sleep(0.3)  # the subscription is in place
    intruder = Session(broker, "tummo.west-1", "hq-ingest").connect()  # clean start
    time.sleep(1.0)
    assert hq.disconnects == 0 and len(hq.connects) == 1  # HQ was not kicked

    # HQ away (its session kept by the broker); the intruder tries again meanwhile.
    hq.close()
    intruder.close()
    west = Session(broker, "tummo.west-1", "tummo.west-1").connect()
    for k in range(5):
        publish(west, topics.tracks("tummo", "west-1"), b"queued %d" % k)
    intruder = Session(broker, "tummo.west-1", "hq-ingest").connect()
    intruder.close()
    hq.reopen()
    # HQ's session survived: the broker says so and hands over what it kept.
    assert hq.wait_for(lambda: len(hq.connects) == 2)
    assert hq.connects[-1] is True
    assert hq.wait_for(lambda: len(hq.messages) == 5)
    assert hq.messages == [b"queued %d" % k for k in range(5)]
    for session in (hq, west):
        session.close()


def test_a_post_under_another_posts_client_id_does_not_kick_it(broker):
    east = Session(broker, "tummo.east-1", "tummo.east-1").connect()
    impostor = Session(broker, "tummo.west-1", "tummo.east-1").connect()
    time.sleep(1.0)
    assert east.disconnects == 0
    for session in (east, impostor):
        session.close()


def test_a_publish_over_the_size_limit_reaches_nobody(broker):
    hq = Session(broker, "hq", "hq", subscribe="dunewatch/v1/#").connect()
    time.sleep(0.3)
    # mosquitto answers an oversized publish by closing the connection (the edge's uplink
    # refuses such a message before it stores it, or it would be sent again forever).
    sender = Session(broker, "tummo.west-1", "tummo.west-1").connect()
    sender.client.publish(topics.tracks("tummo", "west-1"), b"x" * (1024 * 1024 + 1), qos=1)
    assert sender.wait_for(lambda: sender.disconnects >= 1)
    sender.close()
    west = Session(broker, "tummo.west-1", "tummo.west-1").connect()
    publish(west, topics.tracks("tummo", "west-1"), b"small")
    assert hq.wait_for(lambda: b"small" in hq.messages)
    time.sleep(0.5)
    assert hq.messages == [b"small"]  # the oversized one never arrived
    for session in (hq, west):
        session.close()
