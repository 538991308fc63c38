"""The node's link to HQ: MQTT v5 over paho-mqtt 2.x, fed from the SQLite outbox.

Everything the node says goes into the `Outbox` first; a sender thread
publishes it at QoS 1 and the broker's PUBACK deletes it. Messages stored
while connected go out at once, oldest first (the live lane); what piled up
while the link was down (the backlog: everything stored before the latest
connect) drains oldest first at `drain_rate` messages per second, so the
live picture is never stuck behind minutes of backlog. A message that was
sent but not acknowledged when the link dropped is sent again after the
reconnect, so HQ may see a batch twice and de-duplicates by (node, seq);
it never sees a gap.

On every connect the node publishes a retained `birth` status; the broker
holds a retained Last Will saying `offline`. Status messages carry an MQTT
v5 message expiry so that no stale status outlives its meaning in the broker.
paho reconnects on its own with exponential back-off; tracking goes on
meanwhile, filling the outbox.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.outbox import Outbox
from wire import topics
from wire.messages import NodeStatus, encode
from wire.version import SOFTWARE_VERSION

log = logging.getLogger(__name__)
QOS = 1


@dataclass(frozen=True)
class UplinkConfig:
    site: str
    node: str
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None  # from the environment or a file, never from the TOML
    ca_file: str | None = None  # TLS when set
    keepalive_s: int = 15
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    max_in_flight: int = 20
    drain_rate: float = 50.0  # backlog messages per second
    status_expiry_s: int = 600


@dataclass
class UplinkCounters:
    published: int = 0
    acknowledged: int = 0
    backlog_sent: int = 0  # stored before the latest connect, sent after it
    connects: int = 0
    disconnects: int = 0
    publish_errors: int = 0
    connected: bool = False


@dataclass
class _Sending:
    """Which outbox messages are on the wire, and where each lane has got to."""

    in_flight: dict[int, int] = field(default_factory=dict)  # paho mid -> outbox id
    live_after: int = 0  # outbox ids above this are live; at or below, backlog
    live_cursor: int = 0  # last live id handed to paho
    backlog_cursor: int = 0  # last backlog id handed to paho
    backlog_tokens: float = 0.0
    backlog_clock: float = field(default_factory=time.monotonic)


class Uplink:
    def __init__(self, config: UplinkConfig, outbox: Outbox):
        self.config = config
        self.outbox = outbox
        self.counters = UplinkCounters()
        self._sending = _Sending()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender: threading.Thread | None = None
        self.client = self._make_client()

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive_s,
                                  clean_start=True)  # fmt: skip
        self.client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="uplink-sender",
                                        daemon=True)  # fmt: skip
        self._sender.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Publish what the link takes within the timeout, say offline, disconnect."""
        deadline = time.monotonic() + flush_timeout_s
        while self.counters.connected and self.outbox.depth() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join()
        if self.counters.connected:
            info = self.client.publish(*self._status_message("offline"), qos=QOS, retain=True,
                                       properties=self._expiry())  # fmt: skip
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, topic: str, payload: bytes) -> int:
        """Store a message for HQ; it leaves when the link allows. Its outbox id."""
        message_id = self.outbox.put(topic, payload)
        self._wake.set()
        return message_id

    def send_numbered(self, topic: str, payload_of) -> int:
        """Store a numbered batch: `payload_of(seq)` gives its bytes. Its seq."""
        seq, _ = self.outbox.put_numbered(topic, payload_of)
        self._wake.set()
        return seq

    # --- paho ----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{config.site}.{config.node}",
                             protocol=mqtt.MQTTv5)  # fmt: skip
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.ca_file is not None:
            client.tls_set(ca_certs=config.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.will_set(*self._status_message("offline"), qos=QOS, retain=True,
                        properties=self._expiry(PacketTypes.WILLMESSAGE))  # fmt: skip
        client.reconnect_delay_set(round(config.reconnect_min_s), round(config.reconnect_max_s))
        client.max_inflight_messages_set(config.max_in_flight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _status_message(self, state: str) -> tuple[str, bytes]:
        status = NodeStatus(site=self.config.site, node=self.config.node, state=state,
                            time=time.time(), software_version=SOFTWARE_VERSION,
                            outbox_depth=self.outbox.depth())  # fmt: skip
        return topics.status(self.config.site, self.config.node), encode(status)

    def _expiry(self, packet_type=PacketTypes.PUBLISH) -> Properties:
        properties = Properties(packet_type)
        properties.MessageExpiryInterval = self.config.status_expiry_s
        return properties

    def publish_status(self, status: NodeStatus) -> None:
        """Retained and expiring, straight to the broker: a status is only worth its news."""
        if self.counters.connected:
            self.client.publish(topics.status(status.site, status.node), encode(status),
                                qos=QOS, retain=True, properties=self._expiry())  # fmt: skip

    # paho calls these on its network thread, holding its own locks; they only hand
    # events to the sender thread, which alone keeps the bookkeeping (no lock order to get
    # wrong between ours and paho's).

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection reason=%s", reason_code)
            return
        client.publish(*self._status_message("birth"), qos=QOS, retain=True,
                       properties=self._expiry())  # fmt: skip
        self._events.put(("connected", None, False))
        self.counters.connects += 1
        self.counters.connected = True
        log.info("connected to broker host=%s port=%s backlog=%d", self.config.host,
                 self.config.port, self.outbox.depth())  # fmt: skip
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.counters.connected:
            self.counters.disconnects += 1
        self.counters.connected = False
        log.warning("disconnected from broker reason=%s", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._events.put(("ack", mid, reason_code.is_failure))
        self._wake.set()

    # --- the sender thread ---------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.05)
            self._wake.clear()
            self._handle_events()
            while self.counters.connected and not self._stop.is_set() and self._send_one():
                self._handle_events()

    def _handle_events(self) -> None:
        delivered = []
        while True:
            try:
                event, mid, failed = self._events.get_nowait()
            except queue.Empty:
                break
            if event == "connected":
                self._sending = _Sending(live_after=self.outbox.newest_id())
                self._sending.live_cursor = self._sending.live_after
                continue
            message_id = self._sending.in_flight.pop(mid, None)
            if message_id is None:
                continue  # a status, or a message sent before the latest reconnect
            if failed:
                # It stays in the outbox and goes again after the next reconnect.
                self.counters.publish_errors += 1
                log.warning("broker refused a message id=%d", message_id)
                continue
            self.counters.acknowledged += 1
            delivered.append(message_id)
        if delivered:
            self.outbox.delete_many(delivered)

    def _send_one(self) -> bool:
        """Hand paho the next message, live lane first; False when there is nothing to send."""
        sending = self._sending
        if len(sending.in_flight) >= self.config.max_in_flight:
            return False
        live = self.outbox.after(sending.live_cursor, limit=1)
        if live:
            return self._publish(live[0], lane="live")
        backlog = self.outbox.after(sending.backlog_cursor, limit=1)
        if backlog and backlog[0].message_id <= sending.live_after and self._backlog_token():
            return self._publish(backlog[0], lane="backlog")
        return False

    def _backlog_token(self) -> bool:
        """A token bucket of `drain_rate` per second, at most one second's worth saved up."""
        sending = self._sending
        now = time.monotonic()
        rate = self.config.drain_rate
        elapsed = now - sending.backlog_clock
        sending.backlog_tokens = min(rate, sending.backlog_tokens + elapsed * rate)
        sending.backlog_clock = now
        if sending.backlog_tokens < 1.0:
            return False
        sending.backlog_tokens -= 1.0
        return True

    def _publish(self, message, lane: str) -> bool:
        info = self.client.publish(message.topic, message.payload, qos=QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.counters.publish_errors += 1
            return False  # not connected after all; the next connect starts over
        self._sending.in_flight[info.mid] = message.message_id
        if lane == "live":
            self._sending.live_cursor = message.message_id
        else:
            self._sending.backlog_cursor = message.message_id
            self.counters.backlog_sent += 1
        self.counters.published += 1
        return True
