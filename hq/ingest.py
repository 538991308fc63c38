"""HQ's ingest: every post's messages in, one committed transaction each, then the ack.

`Ingest.handle` takes one MQTT message and turns it into one store
transaction: a TrackBatch goes through fusion and the alert detectors and
is written with its (node, seq), its node tracks, the fused tracks it
changed, their history points and any alerts; a NodeStatus updates the
node and its health alerts; a node's own Alert is stored. What does not
validate, or claims another node than its topic, becomes a dead letter with
the reason and the raw bytes. Nothing a message holds can stop ingest.

`IngestClient` is the MQTT side: paho-mqtt 2.x, MQTT v5, a persistent
session under a fixed client id, QoS 1 with manual acknowledgement. A
message is acknowledged only after its transaction committed, so when HQ
dies the broker sends again what was not committed, and the (node, seq)
record makes the repeat a no-op.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hq.alerts import AlertEvent, CrossingDetector, DistressDetector, NodeHealthDetector, TrackView
from hq.flow import FlowStatistics
from hq.fusion import Fusion, FusionUpdate, GlobalTrack
from hq.store import DeadLetter, FusedTrack, HistoryPoint, IngestBatch, NodeTrack, Store, node_key
from wire import topics
from wire.messages import (
    Alert,
    NodeStatus,
    TrackBatch,
    TrackStatus,
    UnsupportedVersion,
    VehicleTelemetry,
    decode,
)

log = logging.getLogger(__name__)
MAX_PAYLOAD = 4 * 1024 * 1024  # bytes; a larger message is refused unread
HQ_SITE, HQ_NODE = "hq", "fusion"  # the "sender" of alerts HQ raises itself


@dataclass
class IngestCounters:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    alerts: int = 0
    telemetry: int = 0


class Ingest:
    def __init__(self, store: Store, fusion: Fusion, crossings: CrossingDetector,
                 distress: DistressDetector, health: NodeHealthDetector,
                 flow: FlowStatistics | None = None):  # fmt: skip
        self.store = store
        self.fusion = fusion
        self.crossings = crossings
        self.distress = distress
        self.health = health
        self.flow = flow or FlowStatistics()
        self.counters = IngestCounters()
        self.telemetry: dict[tuple[str, int], VehicleTelemetry] = {}  # latest per drone
        self._lock = threading.Lock()  # messages and ticks take turns

    def handle(self, topic: str, payload: bytes, received: float) -> str:
        """Store one message; "stored", "duplicate" or "dead_letter"."""
        with self._lock:
            self.counters.messages += 1
            try:
                message = self._validated(topic, payload)
            except ValueError as error:  # pydantic's ValidationError and UnsupportedVersion too
                return self._dead_letter(topic, payload, received, error)
            if isinstance(message, TrackBatch):
                return self._track_batch(message, received)
            if isinstance(message, NodeStatus):
                events = self.health.status(message, received)
                return self._commit(IngestBatch(received, statuses=[message],
                                                alerts=self._wire_alerts(events)))  # fmt: skip
            if isinstance(message, VehicleTelemetry):
                self.telemetry[(node_key(message.site, message.node), message.sysid)] = message
                self.counters.telemetry += 1
                return "stored"
            return self._commit(IngestBatch(received, alerts=[message]))

    def tick(self, now: float) -> None:
        """Coast and end stale fused tracks; raise alerts for silent posts."""
        with self._lock:
            update = self.fusion.tick(now)
            events = self.health.silence(now)
            fused, views = self._changed_tracks(update)
            for view in views:
                events += self.distress.update(view)
            if fused or events:
                self._commit(IngestBatch(now, fused_tracks=fused,
                                         alerts=self._wire_alerts(events)))  # fmt: skip

    # --- messages ----------------------------------------------------------------------

    def _validated(self, topic: str, payload: bytes):
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        site, node, channel = topics.parse(topic)
        message = decode(payload)
        if (message.site, message.node) != (site, node):
            raise ValueError(f"message from {message.site}/{message.node} on {site}/{node}'s topic")
        expected = {"tracks": TrackBatch, "status": NodeStatus, "telemetry": VehicleTelemetry,
                    "alerts": Alert}[channel]  # fmt: skip
        if not isinstance(message, expected):
            raise ValueError(f"a {type(message).__name__} on the {channel} channel")
        return message

    def _track_batch(self, batch: TrackBatch, received: float) -> str:
        key = node_key(batch.site, batch.node)
        if self.store.already_seen(key, batch.seq):
            self.counters.duplicates += 1
            return "duplicate"
        update = self.fusion.ingest(batch, received)
        fused, views = self._changed_tracks(update)
        events = []
        for view in views:
            crossings = self.crossings.update(view)
            for event in crossings:
                self.flow.add(event)
            events += crossings + self.distress.update(view)
        global_of = dict(zip(update.history.local_id.tolist(), update.history.global_id.tolist(),
                             strict=True))  # fmt: skip
        node_tracks = [NodeTrack(key, t, _published(global_of.get(t.track_id)))
                       for t in batch.tracks]  # fmt: skip
        return self._commit(IngestBatch(
            received, node_key=key, seq=batch.seq, node_tracks=node_tracks, fused_tracks=fused,
            history=_history_points(update), alerts=self._wire_alerts(events),
        ))  # fmt: skip

    def _changed_tracks(self, update: FusionUpdate) -> tuple[list[FusedTrack], list[TrackView]]:
        changed = set(update.created) | set(update.updated) | set(update.ended)
        if not changed:
            return [], []
        tracks = self.fusion.snapshot(changed)
        ended = set(update.ended) - {g.id for g in tracks}
        fused = [_fused(g, self.fusion.frame.alt) for g in tracks]
        views = [TrackView(g.id, g.time, float(g.x[0]), float(g.x[1]), str(g.target_class),
                           g.status == TrackStatus.ENDED) for g in tracks]  # fmt: skip
        # Tracks that ended and left the snapshot: tell the detectors they are gone.
        views += [TrackView(gid, 0.0, 0.0, 0.0, "unknown", ended=True) for gid in ended]
        return fused, views

    def _wire_alerts(self, events: list[AlertEvent]) -> list[Alert]:
        alerts = []
        for event in events:
            lat, lon = event.position if event.position is not None else (None, None)
            alerts.append(Alert(
                site=HQ_SITE, node=HQ_NODE, alert_id=event.alert_id, alert_type=event.kind,
                severity=event.severity, time=event.time, message=event.message, lat=lat,
                lon=lon, track_ids=list(event.track_ids), active=event.change != "cleared",
            ))  # fmt: skip
        self.counters.alerts += len(alerts)
        return alerts

    def _commit(self, batch: IngestBatch) -> str:
        if not self.store.commit_ingest(batch):
            self.counters.duplicates += 1
            return "duplicate"
        self.counters.stored += 1
        return "stored"

    def _dead_letter(self, topic: str, payload: bytes, received: float, error) -> str:
        kind = "unsupported version" if isinstance(error, UnsupportedVersion) else "invalid"
        reason = f"{kind}: {str(error)[:1000]}"
        letter = DeadLetter(received, topic, reason, bytes(payload[:MAX_PAYLOAD]))
        self.store.commit_ingest(IngestBatch(received, dead_letters=[letter]))
        self.counters.dead_letters += 1
        log.warning("dead letter topic=%s reason=%s", topic, reason[:200])
        return "dead_letter"


def _published(global_id: int | None) -> int | None:
    return None if global_id is None or global_id < 0 else int(global_id)


def _fused(track: GlobalTrack, ground_alt: float) -> FusedTrack:
    return FusedTrack(
        global_id=track.id, time=track.time, lat=track.lat, lon=track.lon, alt=ground_alt,
        state=tuple(float(v) for v in track.x), covariance=tuple(float(v) for v in track.P.ravel()),
        target_class=track.target_class, status=track.status, quality=1.0,
        sources=tuple(f"{node}:{local}" for node, local in track.sources),
    )  # fmt: skip


def _history_points(update: FusionUpdate) -> list[HistoryPoint]:
    h = update.history
    keep = np.flatnonzero(h.global_id >= 0)
    return [
        HistoryPoint(int(h.global_id[k]), float(h.time[k]), float(h.lat[k]), float(h.lon[k]),
                     *(float(v) for v in h.x[k]), float(h.P[k, 0, 0]), float(h.P[k, 1, 1]),
                     float(h.P[k, 0, 1]))  # fmt: skip
        for k in keep
    ]


class IngestClient:
    """The MQTT side: a persistent session, manual acks after each commit, and a tick."""

    def __init__(self, ingest: Ingest, host: str, port: int, username: str,
                 password: str | None, client_id: str = "hq-ingest",
                 session_expiry_s: int = 7 * 86_400, tick_s: float = 1.0):  # fmt: skip
        self.ingest = ingest
        self.tick_s = tick_s
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)
        self._host, self._port = host, port
        self._properties = Properties(PacketTypes.CONNECT)
        self._properties.SessionExpiryInterval = session_expiry_s

    def start(self) -> IngestClient:
        self.client.connect_async(self._host, self._port, keepalive=15, clean_start=False,
                                  properties=self._properties)  # fmt: skip
        self.client.loop_start()
        self._ticker = threading.Thread(target=self._tick_loop, name="hq-tick", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused HQ reason=%s", reason_code)
            return
        client.subscribe(topics.all_nodes(), qos=1)
        self.connected.set()
        log.info("HQ ingest connected session_present=%s", flags.session_present)

    def _on_message(self, client, userdata, message) -> None:
        try:
            self.ingest.handle(message.topic, message.payload, time.time())
        except Exception:  # the store failed (disk full...): no ack, the broker sends again
            log.exception("message not stored topic=%s", message.topic)
            return
        client.ack(message.mid, message.qos)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.ingest.tick(time.time())
            except Exception:
                log.exception("tick failed")
