"""HQ's MQTT side of ingest: a persistent session, messages committed in groups, each
acknowledged only after its group's commit.

`IngestClient`: paho-mqtt 2.x, MQTT v5, a persistent session under a fixed
client id, QoS 1 with manual acknowledgement. The network thread only queues
what arrives; the `GroupWriter`'s one thread takes everything waiting (at most
`max_group` messages), hands it to `hq.ingest.Ingest` as one group and only
after the commit acknowledges each message; one the store could not commit
is tried again after `retry_s`. When HQ dies, the broker sends again whatever
was not acknowledged, and the (node, seq) record makes a repeat of a
committed batch a no-op. `unacknowledged` is what the ingest watchdog
(hq/ingest/watchdog.py) watches. Only status topics send HQ their retained
message when it subscribes; elsewhere a retained message is marked, and
refused.
After each commit, `DeliveryAcks` (hq/ingest/delivery.py) tells each node which of
its batches the store holds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hq.ingest.delivery import DeliveryAcks
from hq.ingest.ingest import Ingest, Outcome, Received
from hq.ingest.watchdog import Unacknowledged
from wire import topics

log = logging.getLogger(__name__)


class GroupWriter:
    """What arrived, queued; one thread that ingests it in groups, commits each group in one
    transaction and only then reports each message's outcome; and the tick.

    `done(token, outcome)` is called on the writer thread for every message after its
    group was committed, with the token it was put with (IngestClient acknowledges
    the MQTT message there, unless the outcome is "failed").
    """

    def __init__(self, ingest: Ingest, done: Callable[[object, Outcome], None],
                 max_group: int = 200, tick_s: float | None = 1.0,
                 retry_s: float = 1.0):  # fmt: skip
        """`retry_s`: a message the store could not commit ("failed") is tried again after
        this long (the store may be locked or restarting)."""
        self.ingest = ingest
        self.max_group = max_group
        self.tick_s = tick_s
        self.retry_s = retry_s
        self._done = done
        self._queue: queue.SimpleQueue[tuple[Received, object] | None] = queue.SimpleQueue()
        self._retry: list[tuple[Received, object]] = []  # failed; queued again at _retry_at
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, message: Received, token: object = None) -> None:
        """Any thread: queue a message for the next group."""
        self._queue.put((message, token))

    def start(self) -> GroupWriter:
        self._thread = threading.Thread(target=self._run, name="hq-ingest", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the group being committed; what is still queued is left undone."""
        self._stop.set()
        self._queue.put(None)  # wakes the thread
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        next_tick = None if self.tick_s is None else time.monotonic() + self.tick_s
        while not self._stop.is_set():
            if self._retry and time.monotonic() >= self._retry_at:
                for entry in self._retry:
                    self._queue.put(entry)
                self._retry = []
            wakes = [t for t in (next_tick, self._retry_at if self._retry else None)
                     if t is not None]
            wait = None if not wakes else max(0.0, min(wakes) - time.monotonic())
            group = self._take(wait)
            if group:
                self._ingest(group)
            if next_tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                self._tick()

    def _take(self, timeout: float | None) -> list[tuple[Received, object]]:
        """Everything waiting, up to max_group; waits up to `timeout` for the first.

        No waiting for more once something is there: while one group commits, the next
        one gathers, so groups grow with the load by themselves.
        """
        try:
            group = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(group) < self.max_group:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [entry for entry in group if entry is not None]

    def _ingest(self, group: list[tuple[Received, object]]) -> None:
        try:
            outcomes = self.ingest.handle_many([message for message, _ in group])
        except Exception:  # a fault in ingest itself: nothing is done, all is sent again
            log.exception("group of %d messages not ingested", len(group))
            return
        for entry, outcome in zip(group, outcomes, strict=True):
            self._done(entry[1], outcome)
            if outcome == "failed":
                self._retry.append(entry)
        if self._retry:
            self._retry_at = time.monotonic() + self.retry_s

    def _tick(self) -> None:
        try:
            self.ingest.tick(time.time())
        except Exception:
            log.exception("tick failed")


class IngestClient:
    """The MQTT side: a persistent session whose messages a GroupWriter commits in groups
    and acknowledges after each commit."""

    def __init__(self, ingest: Ingest, host: str, port: int, username: str,
                 password: str | None, client_id: str = "hq-ingest",
                 session_expiry_s: int = 7 * 86_400, tick_s: float = 1.0,
                 max_group: int = 200, receive_maximum: int = 2000):  # fmt: skip
        """`max_group`: most messages in one transaction. `receive_maximum`: most messages
        the broker may have sent and not yet seen acknowledged (queued here or being
        committed); well above max_group, so that groups can fill."""
        self.ingest = ingest
        self.connected = threading.Event()
        self.unacknowledged = Unacknowledged()  # what the ingest watchdog watches
        self.writer = GroupWriter(ingest, self._acknowledge, max_group, tick_s)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(1, 30)
        self.delivery = DeliveryAcks(self._publish_delivered)
        ingest.on_delivered = self.delivery.committed
        self._host, self._port = host, port
        self._properties = Properties(PacketTypes.CONNECT)
        self._properties.SessionExpiryInterval = session_expiry_s
        self._properties.ReceiveMaximum = receive_maximum

    def start(self) -> IngestClient:
        self.delivery.start()
        self.writer.start()
        self.client.connect_async(self._host, self._port, keepalive=15, clean_start=False,
                                  properties=self._properties)  # fmt: skip
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """Commit and acknowledge the group in hand; the broker sends the rest again on the
        next start."""
        self.writer.stop()
        self.delivery.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused HQ reason=%s", reason_code)
            return
        # A session kept from an older HQ may hold its one subscription to everything.
        client.unsubscribe(topics.all_nodes())
        client.subscribe(_subscriptions())
        self.unacknowledged.clear()  # the broker sends again what was not acknowledged
        self.connected.set()
        log.info("HQ ingest connected session_present=%s", flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # From here the broker keeps the posts' messages for HQ's session, even while HQ
        # is down: a deployment starts its nodes after this line.
        granted = all(not code.is_failure for code in reason_codes)
        log.log(
            logging.INFO if granted else logging.WARNING, "HQ ingest subscribed granted=%s", granted
        )

    def _on_message(self, client, userdata, message) -> None:
        # The network thread only queues: committing here would hold up every other message.
        received, token = time.time(), (message.mid, message.qos)
        if message.qos:
            self.unacknowledged.add(token, received)
        self.writer.put(Received(message.topic, message.payload, received, bool(message.retain)),
                        token)  # fmt: skip

    def _publish_delivered(self, topic: str, payload: bytes) -> None:
        # Not queued while disconnected: each confirmation holds all the earlier ones, and a
        # node whose batches go unconfirmed sends them again and hears then.
        if self.client.is_connected():
            self.client.publish(topic, payload, qos=1, retain=True)

    def _acknowledge(self, token: tuple[int, int], outcome: Outcome) -> None:
        if outcome != "failed":  # not acknowledged: the writer tries it again
            self.client.ack(*token)
            self.unacknowledged.remove(token)


def _subscriptions() -> list[tuple[str, SubscribeOptions]]:
    """Every post's channels. Only a status may be retained (the post's last word): on the
    other channels the broker sends HQ no retained copy when it subscribes (a retained junk
    message would otherwise come again at every reconnect), and marks a message published
    as retained, so that ingest refuses it."""
    return [(topics.all_nodes(channel),
             SubscribeOptions(qos=1, retainAsPublished=True,
                              retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
                              if channel == "status" else SubscribeOptions.RETAIN_DO_NOT_SEND))
            for channel in topics.CHANNELS]  # fmt: skip
