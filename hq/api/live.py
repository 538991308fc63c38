"""The live picture for the Server-Sent Events stream: committed batches in, per-client frames out.

Ingest calls `LiveFeed.publish(batch)` from its own thread once per committed
batch. Publishing only records the newest state of each track and alert under
a lock (coalescing per track), so it never waits on a client. Every `tick_s`
the event loop turns what was published into ONE delta event (created,
updated, ended, alerts), each track serialised once, keeps it in a bounded
ring for resuming, and hands it to every subscriber's bounded queue. A client
whose queue is full is resynced (its queue emptied, a fresh snapshot sent);
one that keeps falling behind is dropped, and its browser reconnects.

Filters (bounding box, classes) are applied when an event is rendered for a
client, with numpy over the event's positions, and each rendering is cached
per filter: fifty clients with the same view cost one rendering. A track that
moves out of a client's box is `ended` for that client, one that moves in is
`created`, so a client's picture always equals the filtered live picture. Our own drones
(a few per post) go to every client unfiltered: the newest telemetry of each drone that
changed in the tick, in `drones` of the delta and of the snapshot.

Event ids are `<epoch>-<seq>`; the epoch changes with every process, so an id
from before a restart (or from too far back for the ring) gets a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import numpy as np

from hq.api.models import AlertOut, drone_out, track_out
from hq.store.records import BBox, FusedTrack, IngestBatch, TrackLabel
from wire.messages import Alert, TargetClass, TrackStatus, VehicleTelemetry

log = logging.getLogger(__name__)
CLASS_CODES = {c: i for i, c in enumerate(TargetClass)}
MAX_ALERTS = 1000  # unresolved alerts kept for snapshots, newest first
_RESYNC, _DROP = object(), object()


@dataclass(frozen=True)
class StreamFilter:
    bbox: BBox | None = None
    classes: frozenset[TargetClass] | None = None

    def match(self, lat: np.ndarray, lon: np.ndarray, cls: np.ndarray) -> np.ndarray:
        keep = np.ones(lat.shape, dtype=bool)
        if self.bbox is not None:  # NaN (a track that was not there before) never matches
            b = self.bbox
            keep &= (lat >= b.south) & (lat <= b.north) & (lon >= b.west) & (lon <= b.east)
        if self.classes is not None:
            keep &= np.isin(cls, [CLASS_CODES[c] for c in self.classes])
        return keep


@dataclass
class _Live:
    track: FusedTrack
    json: bytes  # the TrackOut, serialised once
    lat: float
    lon: float
    cls: int  # the effective class's code


@dataclass
class _Event:
    seq: int
    json: list[bytes]  # created and updated tracks
    created: np.ndarray  # bool, per entry of json
    now: np.ndarray  # (3, n): lat, lon, class code after the change
    before: np.ndarray  # (3, n): before the change; NaN for created tracks
    ended: np.ndarray  # global ids
    ended_at: np.ndarray  # (3, m): where the ended tracks were last
    gids: np.ndarray
    alerts: list[bytes]
    drones: list[bytes] = field(default_factory=list)  # DroneOut of each drone that reported
    frames: dict[StreamFilter, bytes | None] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return (sum(map(len, self.json)) + sum(map(len, self.alerts)) + sum(map(len, self.drones))
                + 64 * len(self.ended))  # fmt: skip


@dataclass(eq=False)
class Subscription:
    filter: StreamFilter
    queue: asyncio.Queue
    last_seq: int = 0
    resyncs: int = 0


@dataclass
class FeedCounters:
    events: int = 0  # delta events made
    frames_sent: int = 0  # events, snapshots and heartbeats written to clients
    resyncs: int = 0
    drops: int = 0
    published_batches: int = 0


class LiveFeed:
    def __init__(self, tick_s: float = 0.5, heartbeat_s: float = 15.0, ring_events: int = 120,
                 ring_bytes: int = 64 * 1024 * 1024, client_queue_events: int = 16,
                 max_resyncs: int = 3, stale_s: float = 300.0):  # fmt: skip
        self.tick_s, self.heartbeat_s, self.stale_s = tick_s, heartbeat_s, stale_s
        self.ring_events, self.ring_bytes = ring_events, ring_bytes
        self.client_queue_events, self.max_resyncs = client_queue_events, max_resyncs
        self.epoch = secrets.token_hex(4)
        self.counters = FeedCounters()
        # Written by any thread, under the lock; drained by the loop each tick.
        self._lock = threading.Lock()
        self._pending_tracks: dict[int, FusedTrack] = {}
        self._pending_alerts: dict[str, Alert | AlertOut] = {}
        self._pending_labels: dict[int, TrackLabel] = {}
        self._pending_drones: dict[tuple[str, str, int], VehicleTelemetry] = {}
        # Owned by the event loop. The lock matters only where several loops share one feed
        # (each test client runs its own); in a server it is never contended.
        self._state = threading.RLock()
        self._seq = 0
        self._ticks = 0
        self._current: dict[int, _Live] = {}
        self._labels: dict[int, TrackLabel] = {}
        self._alerts: dict[str, AlertOut] = {}
        self._drones: dict[tuple[str, str, int], tuple[float, bytes]] = {}  # time, DroneOut
        # Alerts operators resolved: ingest's later updates of them (a refresh, a "cleared")
        # must not bring them back as open.
        self._resolved: set[str] = set()
        self._ring: deque[_Event] = deque()
        self._ring_size = 0
        self._subscribers: set[Subscription] = set()
        # (tracks JSON, their lat/lon/class, alerts JSON) for snapshots; None after a change
        self._snapshot_arrays: tuple | None = None
        self._runners = 0

    # -- any thread ---------------------------------------------------------------------------

    def publish(self, batch: IngestBatch) -> None:
        """Take a committed batch (ingest's thread): O(batch), never waits on a client."""
        with self._lock:
            for track in batch.fused_tracks:
                held = self._pending_tracks.get(track.global_id)
                if held is None or track.time >= held.time:
                    self._pending_tracks[track.global_id] = track
            for alert in batch.alerts:
                self._pending_alerts[alert.alert_id] = alert
            for telemetry in batch.telemetry:
                key = (telemetry.site, telemetry.node, telemetry.sysid)
                held = self._pending_drones.get(key)
                if held is None or telemetry.time >= held.time:
                    self._pending_drones[key] = telemetry
            self.counters.published_batches += 1

    def publish_alert(self, alert: AlertOut) -> None:
        """An alert's new state after an operator acknowledged or resolved it."""
        with self._lock:
            self._pending_alerts[alert.alert_id] = alert

    def publish_label(self, label: TrackLabel) -> None:
        with self._lock:
            self._pending_labels[label.global_id] = label

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._runners > 0

    # -- the event loop -----------------------------------------------------------------------

    def seed(self, tracks: Iterable[FusedTrack], labels: dict[int, TrackLabel],
             alerts: Iterable[AlertOut], resolved: Iterable[str] = (),
             drones: Iterable[VehicleTelemetry] = ()) -> None:  # fmt: skip
        """The picture at start (from the store), before the first tick; `resolved`: the
        ids of every alert operators resolved; `drones`: each drone's newest telemetry."""
        with self._state:
            self._seed(tracks, labels, alerts, resolved)
            self._update_drones({(d.site, d.node, d.sysid): d for d in drones})

    def _seed(self, tracks, labels, alerts, resolved) -> None:
        self._labels = dict(labels)
        # A track stamped far ahead of the clock (stored before ingest refused such times)
        # would make every other track look stale: it is left out.
        horizon = time.time() + self.stale_s
        live = [t for t in tracks if t.status != TrackStatus.ENDED and t.time <= horizon]
        newest = max((t.time for t in live), default=0.0)
        for track in live:
            if track.time >= newest - self.stale_s:
                self._current[track.global_id] = self._live(track)
        self._resolved = set(resolved)
        for alert in sorted(alerts, key=lambda a: a.time)[-MAX_ALERTS:]:
            if alert.state != "resolved":
                self._alerts[alert.alert_id] = alert
        self._snapshot_arrays = None

    async def run(self) -> None:
        """Tick every `tick_s` until cancelled; the app's lifespan runs this as a task."""
        self._runners += 1
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                try:
                    self.tick()
                except Exception:  # a bad record must not end the stream for everyone
                    log.exception("live feed tick failed")
        finally:
            self._runners -= 1
            if not self._runners:  # shutting down: end every stream, or they hold the server
                for sub in list(self._subscribers):
                    self._put_control(sub, _DROP)

    def tick(self) -> None:
        """Turn what was published since the last tick into one event and fan it out."""
        with self._state:
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            tracks, self._pending_tracks = self._pending_tracks, {}
            alerts, self._pending_alerts = self._pending_alerts, {}
            labels, self._pending_labels = self._pending_labels, {}
            drones, self._pending_drones = self._pending_drones, {}
        for gid, label in labels.items():  # a new label re-sends its track
            self._labels[gid] = label
            if gid in self._current and gid not in tracks:
                tracks[gid] = self._current[gid].track
        event = self._event(tracks, alerts, self._update_drones(drones))
        if event is None:
            return
        self._ring.append(event)
        self._ring_size += event.size
        while len(self._ring) > self.ring_events or (self._ring_size > self.ring_bytes
                                                     and len(self._ring) > 1):  # fmt: skip
            self._ring_size -= self._ring.popleft().size
        self.counters.events += 1
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._fell_behind(sub)

    def subscribe(self, stream_filter: StreamFilter, last_event_id: str | None = None
                  ) -> tuple[Subscription, list[bytes]]:  # fmt: skip
        """A new client: its subscription and its first frames (a resume or a snapshot).

        Synchronous on purpose: nothing can happen between the first frames and the
        subscription, so the client misses no event and sees none twice.
        """
        with self._state:
            queue = asyncio.Queue(maxsize=self.client_queue_events)
            sub = Subscription(stream_filter, queue, last_seq=self._seq)
            replay = self._replay(sub, last_event_id)
            first = replay if replay is not None else [self.snapshot_frame(stream_filter)]
            self._subscribers.add(sub)
            return sub, first

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    async def frames(self, sub: Subscription) -> AsyncIterator[bytes]:
        """A subscriber's frames after its first ones, until it is dropped or disconnects."""
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), self.heartbeat_s)
            except TimeoutError:
                yield self._frame("heartbeat", sub.last_seq, b'{"time":%.3f}' % time.time())
                continue
            if item is _DROP:
                return
            if item is _RESYNC:
                sub.last_seq = self._seq
                yield self.snapshot_frame(sub.filter)
                continue
            if item.seq <= sub.last_seq:
                continue  # already in the snapshot it was resynced with
            sub.last_seq = item.seq
            with self._state:
                frame = self._render(item, sub.filter)
            if sub.queue.empty():
                sub.resyncs = 0  # caught up
            if frame is not None:
                self.counters.frames_sent += 1
                yield frame

    def snapshot_frame(self, stream_filter: StreamFilter) -> bytes:
        with self._state:
            return self._snapshot_frame(stream_filter)

    def _snapshot_frame(self, stream_filter: StreamFilter) -> bytes:
        if self._snapshot_arrays is None:
            lives = list(self._current.values())
            at = np.array([(x.lat, x.lon, x.cls) for x in lives], dtype=float).reshape(-1, 3).T
            alerts = b",".join(a.model_dump_json().encode() for a in self._alerts.values())
            self._snapshot_arrays = ([x.json for x in lives], at, alerts)
        json, at, alerts = self._snapshot_arrays
        keep = np.flatnonzero(stream_filter.match(*at))
        drones = b",".join(out for _, out in self._drones.values())
        data = b'{"tracks":[%s],"alerts":[%s],"drones":[%s]}' % (
            b",".join(json[i] for i in keep), alerts, drones)  # fmt: skip
        self.counters.frames_sent += 1
        return self._frame("snapshot", self._seq, data)

    # -- inside the loop ------------------------------------------------------------------------

    def _live(self, track: FusedTrack) -> _Live:
        out = track_out(track, self._labels.get(track.global_id))
        return _Live(track, out.__pydantic_serializer__.to_json(out), track.lat, track.lon,
                     CLASS_CODES[out.target_class])  # fmt: skip

    def _event(self, tracks: dict[int, FusedTrack], alerts: dict,
               drones: list[bytes] = ()) -> _Event | None:  # fmt: skip
        json, gids, created, now, before = [], [], [], [], []
        ended, ended_at = [], []
        for gid, track in tracks.items():
            old = self._current.get(gid)
            if old is not None and track.time < old.track.time:
                continue  # a late batch from a post's backlog: older than what is shown
            if track.status == TrackStatus.ENDED:
                if old is not None:
                    ended.append(gid)
                    ended_at.append((old.lat, old.lon, old.cls))
                    del self._current[gid]
                continue
            new = self._current[gid] = self._live(track)
            json.append(new.json)
            gids.append(gid)
            created.append(old is None)
            now.append((new.lat, new.lon, new.cls))
            before.append((np.nan, np.nan, -1) if old is None else (old.lat, old.lon, old.cls))
        for gid in self._stale():
            old = self._current.pop(gid)
            ended.append(gid)
            ended_at.append((old.lat, old.lon, old.cls))
        alert_json = [a.model_dump_json().encode() for a in self._update_alerts(alerts)]
        if not (json or ended or alert_json or drones):
            return None
        self._seq += 1
        self._snapshot_arrays = None
        return _Event(self._seq, json, np.array(created, dtype=bool), _columns(now),
                      _columns(before), np.array(ended, dtype=np.int64), _columns(ended_at),
                      np.array(gids, dtype=np.int64), alert_json, list(drones))  # fmt: skip

    def _update_drones(self, pending: dict) -> list[bytes]:
        """Each drone's newer telemetry as its DroneOut JSON (an older message from a post's
        backlog changes nothing); the JSON of those that changed."""
        changed = []
        for key, telemetry in sorted(pending.items()):
            held = self._drones.get(key)
            if held is not None and telemetry.time < held[0]:
                continue
            out = drone_out(telemetry)
            self._drones[key] = (telemetry.time, out.__pydantic_serializer__.to_json(out))
            changed.append(self._drones[key][1])
        return changed

    def _stale(self) -> list[int]:
        """Tracks not updated for stale_s of data time (fusion may end a track silently)."""
        self._ticks += 1
        if not self._current or self._ticks % 10:  # a sweep every ten ticks is enough
            return []
        times = np.fromiter((x.track.time for x in self._current.values()), float)
        gids = np.fromiter(self._current.keys(), np.int64)
        return gids[times < times.max() - self.stale_s].tolist()

    def _update_alerts(self, pending: dict) -> list[AlertOut]:
        changed = []
        for alert_id, alert in pending.items():
            if alert_id in self._resolved:
                continue
            if isinstance(alert, Alert):  # from ingest: keep what operators did to it
                held = self._alerts.get(alert_id)
                alert = AlertOut(**{
                    **(held.model_dump() if held else {"first_time": alert.time,
                                                       "state": "open"}),
                    **alert.model_dump(include=set(AlertOut.model_fields)),
                })  # fmt: skip
            changed.append(alert)
            if alert.state == "resolved":
                self._alerts.pop(alert_id, None)
                self._resolved.add(alert_id)
            else:
                self._alerts[alert_id] = alert
        if len(self._alerts) > MAX_ALERTS:
            newest = sorted(self._alerts.values(), key=lambda a: a.time)[-MAX_ALERTS:]
            self._alerts = {a.alert_id: a for a in newest}
        return changed

    def _render(self, event: _Event, f: StreamFilter) -> bytes | None:
        if f in event.frames:
            return event.frames[f]
        now = f.match(*event.now)
        before = f.match(*event.before) & ~event.created
        created = np.flatnonzero(now & ~before)
        updated = np.flatnonzero(now & before)
        gone = np.concatenate([event.gids[before & ~now],
                               event.ended[f.match(*event.ended_at)]])  # fmt: skip
        frame = None
        if len(created) or len(updated) or len(gone) or event.alerts or event.drones:
            data = b'{"created":[%s],"updated":[%s],"ended":[%s],"alerts":[%s],"drones":[%s]}' % (
                b",".join(event.json[i] for i in created),
                b",".join(event.json[i] for i in updated),
                b",".join(b"%d" % g for g in gone.tolist()), b",".join(event.alerts),
                b",".join(event.drones))  # fmt: skip
            frame = self._frame("delta", event.seq, data)
        event.frames[f] = frame
        return frame

    def _replay(self, sub: Subscription, last_event_id: str | None) -> list[bytes] | None:
        """The frames after `last_event_id`, or None when a snapshot is needed instead."""
        epoch, _, seq_text = (last_event_id or "").partition("-")
        if epoch != self.epoch or not seq_text.isdigit() or int(seq_text) > self._seq:
            return None
        seq = int(seq_text)
        oldest = self._ring[0].seq if self._ring else self._seq + 1
        if seq + 1 < oldest:
            return None  # events after it have left the ring
        frames = [self._render(e, sub.filter) for e in self._ring if e.seq > seq]
        return [f for f in frames if f is not None]

    def _fell_behind(self, sub: Subscription) -> None:
        sub.resyncs += 1
        if sub.resyncs > self.max_resyncs:
            self.counters.drops += 1
            self._put_control(sub, _DROP)
            self._subscribers.discard(sub)
            log.info("stream client dropped: too slow resyncs=%d", sub.resyncs)
        else:
            self.counters.resyncs += 1
            self._put_control(sub, _RESYNC)

    @staticmethod
    def _put_control(sub: Subscription, item: object) -> None:
        while not sub.queue.empty():  # what it had queued is superseded by a snapshot
            sub.queue.get_nowait()
        sub.queue.put_nowait(item)

    def _frame(self, name: str, seq: int, data: bytes) -> bytes:
        return b"id: %s-%d\nevent: %s\ndata: %s\n\n" % (self.epoch.encode(), seq,
                                                        name.encode(), data)  # fmt: skip


def _columns(rows: list[tuple]) -> np.ndarray:
    return np.array(rows, dtype=float).reshape(-1, 3).T
