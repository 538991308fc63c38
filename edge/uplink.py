"""The node's link to HQ: MQTT v5 over paho-mqtt 2.x, fed from the SQLite outbox.

Everything the node says goes into the `Outbox` first; a sender thread
publishes it at QoS 1. Messages stored while connected go out at once,
oldest first (the live lane); what piled up while the link was down (the
backlog: everything stored before the latest connect) drains oldest first at
`drain_rate` messages per second, so the live picture is never stuck behind
minutes of backlog.

A numbered TrackBatch leaves the outbox only when HQ says its store holds it
(end-to-end acknowledgement: HQ publishes the seqs it holds on the node's
`delivered` topic, wire/delivery.py), never on the broker's PUBACK alone: a
broker that crashes before it persisted a message, or restarts empty, has
PUBACKed what HQ never gets. When the oldest batch the broker accepted has
waited `confirm_timeout_s` for HQ's word, everything still stored is sent
again as backlog (the wait doubles, up to `confirm_timeout_max_s`, until HQ
confirms again, so a long HQ outage does not become a flood). Messages
without a number (telemetry, the node's alerts) go on the broker's PUBACK.
A message that was sent but not acknowledged when the link dropped is sent
again after the reconnect. So HQ may see a batch twice and de-duplicates by
(node, seq); it never misses one: at least once end to end, exactly once in
HQ's store.

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

from edge.outbox import Outbox, OutboxFull
from wire import delivery, topics
from wire.messages import Alert, NodeStatus, encode
from wire.version import SOFTWARE_VERSION

log = logging.getLogger(__name__)
QOS = 1
DISK_FULL_ALERT_EVERY_S = 60.0


class _TooLarge(Exception):
    pass


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
    confirm_timeout_s: float = 10.0  # a batch the broker took, unconfirmed by HQ: sent again
    confirm_timeout_max_s: float = 120.0
    # The broker's message_size_limit (hq/broker.py): it closes the connection on a larger
    # publish, so such a message is refused here, before it is stored and sent for ever.
    max_message_bytes: int = 1024 * 1024


@dataclass
class UplinkCounters:
    published: int = 0
    acknowledged: int = 0
    backlog_sent: int = 0  # stored before the latest connect, sent after it
    connects: int = 0
    disconnects: int = 0
    publish_errors: int = 0
    confirmed: int = 0  # batches HQ said its store holds (deleted from the outbox)
    resend_rounds: int = 0  # times the unconfirmed batches were sent again
    bad_confirmations: int = 0  # messages on the delivered topic that did not parse
    lost_disk_full: int = 0  # messages the outbox could not store (the disk is full)
    refused_too_large: int = 0  # messages over max_message_bytes, never stored
    connected: bool = False


@dataclass
class _Sending:
    """Which outbox messages are on the wire, and where each lane has got to."""

    in_flight: dict[int, tuple[int, bool]] = field(default_factory=dict)  # paho mid ->
    # (outbox id, numbered)
    awaiting: dict[int, float] = field(default_factory=dict)  # outbox id -> when the broker
    # took it (monotonic s), for numbered batches HQ has not confirmed; oldest first
    confirmed_in_flight: set[int] = field(default_factory=set)  # HQ's word came before the
    # broker's PUBACK
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
        self._confirm_timeout_s = config.confirm_timeout_s
        self._disk_full_alerted = -float("inf")  # monotonic s of the last such alert
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

    def send(self, topic: str, payload: bytes) -> int | None:
        """Store a message for HQ; it leaves when the link allows. Its outbox id; None when
        the disk is full even after dropping the oldest (counted and logged: the node goes
        on, and the next message may find room)."""
        if self._too_large(topic, payload):
            return None
        dropped = self.outbox.counters.dropped_disk_full
        try:
            message_id = self.outbox.put(topic, payload)
        except OutboxFull as error:
            self._lost_to_full_disk(error)
            return None
        if self.outbox.counters.dropped_disk_full != dropped:
            self._alert_full_disk()
        self._wake.set()
        return message_id

    def send_numbered(self, topic: str, payload_of) -> int | None:
        """Store a numbered batch: `payload_of(seq)` gives its bytes. Its seq; None when
        the disk is full (as `send`; the number was not used)."""

        def checked(seq: int) -> bytes:
            payload = payload_of(seq)
            if self._too_large(topic, payload):
                raise _TooLarge  # rolls the number back: it is not used
            return payload

        dropped = self.outbox.counters.dropped_disk_full
        try:
            seq, _ = self.outbox.put_numbered(topic, checked)
        except OutboxFull as error:
            self._lost_to_full_disk(error)
            return None
        except _TooLarge:
            return None
        if self.outbox.counters.dropped_disk_full != dropped:
            self._alert_full_disk()
        self._wake.set()
        return seq

    def _too_large(self, topic: str, payload: bytes) -> bool:
        if len(payload) <= self.config.max_message_bytes:
            return False
        self.counters.refused_too_large += 1
        log.error("message refused: %d bytes exceed %d topic=%s", len(payload),
                  self.config.max_message_bytes, topic)  # fmt: skip
        return True

    def _lost_to_full_disk(self, error: OutboxFull) -> None:
        self.counters.lost_disk_full += 1
        log.error("message dropped: %s lost=%d", error, self.counters.lost_disk_full)
        self._alert_full_disk()

    def _alert_full_disk(self) -> None:
        """Tell HQ straight through the broker (the outbox has no room), at most once a
        minute, while connected; the status's outbox depth and the metrics say it too."""
        now = time.monotonic()
        if not self.counters.connected or now - self._disk_full_alerted < DISK_FULL_ALERT_EVERY_S:
            return
        self._disk_full_alerted = now
        counters = self.outbox.counters
        alert = Alert(site=self.config.site, node=self.config.node, alert_id="outbox-disk-full",
                      alert_type="outbox", severity="critical", time=time.time(),
                      message=f"the disk under the outbox is full: dropped "
                              f"{counters.dropped_disk_full} oldest messages, lost "
                              f"{counters.lost_disk_full} new ones")  # fmt: skip
        self.client.publish(topics.alerts(self.config.site, self.config.node), encode(alert),
                            qos=QOS)  # fmt: skip

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
        client.on_message = self._on_message
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
        client.subscribe(topics.delivered(self.config.site, self.config.node), qos=QOS)
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

    def _on_message(self, client, userdata, message) -> None:
        self._events.put(("delivered", bytes(message.payload), False))
        self._wake.set()

    # --- the sender thread ---------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.05)
            self._wake.clear()
            self._handle_events()
            self._resend_when_unconfirmed()
            while self.counters.connected and not self._stop.is_set() and self._send_one():
                self._handle_events()

    def _handle_events(self) -> None:
        delivered = []
        while True:
            try:
                event, detail, failed = self._events.get_nowait()
            except queue.Empty:
                break
            if event == "connected":
                self._sending = _Sending(live_after=self.outbox.newest_id())
                self._sending.live_cursor = self._sending.live_after
            elif event == "delivered":
                self._confirmed(detail)
            else:
                delivered += self._broker_acknowledged(detail, failed)
        if delivered:
            self.outbox.delete_many(delivered)

    def _broker_acknowledged(self, mid: int, failed: bool) -> list[int]:
        """The broker's PUBACK: the message's id if it may go now (it has no number)."""
        message_id, numbered = self._sending.in_flight.pop(mid, (None, False))
        if message_id is None:
            return []  # a status, or a message sent before the latest reconnect
        if failed:
            # It stays in the outbox and goes again after the next reconnect.
            self.counters.publish_errors += 1
            log.warning("broker refused a message id=%d", message_id)
            return []
        self.counters.acknowledged += 1
        if not numbered:
            return [message_id]
        if message_id in self._sending.confirmed_in_flight:
            self._sending.confirmed_in_flight.discard(message_id)
            return []
        self._sending.awaiting.setdefault(message_id, time.monotonic())
        return []

    def _confirmed(self, payload: bytes) -> None:
        """HQ's word on which batches its store holds: they leave the outbox."""
        try:
            message = delivery.decode(payload)
        except ValueError as error:
            self.counters.bad_confirmations += 1
            log.warning("unreadable confirmation from HQ: %s", str(error)[:200])
            return
        if (message.site, message.node) != (self.config.site, self.config.node):
            self.counters.bad_confirmations += 1
            return
        gone = self.outbox.confirm(message.ranges)
        in_flight = {message_id for message_id, _ in self._sending.in_flight.values()}
        for message_id in gone:
            self._sending.awaiting.pop(message_id, None)
            if message_id in in_flight:
                self._sending.confirmed_in_flight.add(message_id)
        if gone:
            self.counters.confirmed += len(gone)
        # The wait goes back to its base only once HQ keeps up (nothing older than it still
        # waits), so that an HQ that lags behind is not flooded with repeats meanwhile.
        awaiting = self._sending.awaiting
        oldest = next(iter(awaiting.values()), None)
        if oldest is None or time.monotonic() - oldest < self.config.confirm_timeout_s:
            self._confirm_timeout_s = self.config.confirm_timeout_s

    def _resend_when_unconfirmed(self) -> None:
        """When the oldest batch the broker took has waited too long for HQ, send everything
        stored again as backlog, oldest first, at the drain rate."""
        sending = self._sending
        if not sending.awaiting:
            return
        oldest = next(iter(sending.awaiting.values()))
        if time.monotonic() - oldest < self._confirm_timeout_s:
            return
        log.warning("HQ confirmed nothing for %.0f s: sending %d stored messages again",
                    self._confirm_timeout_s, self.outbox.depth())  # fmt: skip
        self.counters.resend_rounds += 1
        sending.awaiting.clear()
        sending.live_after = sending.live_cursor
        sending.backlog_cursor = 0
        self._confirm_timeout_s = min(2 * self._confirm_timeout_s,
                                      self.config.confirm_timeout_max_s)  # fmt: skip

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
        self._sending.in_flight[info.mid] = (message.message_id, message.seq is not None)
        if lane == "live":
            self._sending.live_cursor = message.message_id
        else:
            self._sending.backlog_cursor = message.message_id
            self.counters.backlog_sent += 1
        self.counters.published += 1
        return True
