"""HQ's ingest: every post's messages in, committed in groups, acknowledged after the commit.

`Ingest.handle_many` takes the messages that arrived together, in order. Each
TrackBatch goes through fusion and the alert detectors and becomes an
IngestBatch with its (node, seq), its node tracks, the fused tracks it
changed (ended ones included), their history points and any alerts; a
NodeStatus updates the node and its health alerts; a node's own Alert is
stored in that node's namespace of alert ids. What does not validate, claims
another node than its topic, or claims what cannot be (hq/ingest/checks.py)
becomes a dead letter with the reason, the payload's first bytes, its size
and hash; so does what a post sends over its rate (hq/ingest/rate.py) or
retained outside its status. Then ALL of the group's batches are written in
one store transaction: one commit, one fsync, for many messages (group
commit). A batch the store refuses is found by splitting the group and
becomes a dead letter in its turn; only a store that refuses everything
leaves messages "failed" (not acknowledged, tried again). Nothing a message
holds can stop ingest. After the commit, `on_commit` (the API's live stream)
gets each batch written.

The MQTT side, which feeds it and acknowledges after the commit, is
hq/ingest/client.py.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hq.alerts import (
    AlertEvent,
    CrossingDetector,
    DistressDetector,
    NodeHealthDetector,
    StoreGeography,
    TrackColumns,
)
from hq.alerts.events import POST_ALERT_ID, id_part, post_alert_id
from hq.config import IngestSection
from hq.flow import FlowStatistics
from hq.fusion import Fusion, FusionUpdate, GlobalTracks, History
from hq.fusion.tables import CLASSES, WIRE_ENDED, WIRE_STATUSES
from hq.ingest.checks import MessageBounds, OutOfBounds
from hq.ingest.rate import PostRateLimit
from hq.store.interface import Store
from hq.store.records import (
    DeadLetter,
    FusedTracks,
    HistoryPoints,
    IngestBatch,
    NodeTracks,
    node_key,
)
from wire import topics
from wire.messages import (
    Alert,
    NodeStatus,
    Track,
    TrackBatch,
    UnsupportedVersion,
    VehicleTelemetry,
    decode,
)

log = logging.getLogger(__name__)
DEAD_LETTERS_LOGGED = 10  # of each kind from each topic, then ...
DEAD_LETTER_LOG_EVERY = 1000  # ... one in this many
MAX_PAYLOAD = 4 * 1024 * 1024  # bytes; a larger message is refused unread
HQ_SITE, HQ_NODE = "hq", "fusion"  # the "sender" of alerts HQ raises itself
# "failed": the store could not commit it; it is not acknowledged, so the broker sends it again.
Outcome = Literal["stored", "duplicate", "dead_letter", "failed"]
_CHANNELS = {"tracks": TrackBatch, "status": NodeStatus, "telemetry": VehicleTelemetry,
             "alerts": Alert}  # fmt: skip


@dataclass(frozen=True)
class Received:
    """One message as it arrived."""

    topic: str
    payload: bytes
    received: float  # UTC s at HQ
    retained: bool = False  # the broker's retained copy, or published to be retained


@dataclass
class IngestCounters:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    alerts: int = 0
    telemetry: int = 0
    groups: int = 0  # transactions, each holding one or more messages
    failed: int = 0  # batches the store refused (not acknowledged)
    # Dead-lettered for what they claim (hq/ingest/checks.py): a time too old, a time ahead
    # of HQ's clock (a post's clock skew shows here), a number or shape out of bounds.
    stale: int = 0
    future: int = 0
    out_of_bounds: int = 0
    rate_limited: int = 0  # refused: the post sent more than its rate (kept short)
    retained_refused: int = 0  # retained messages on a post's topic other than status
    on_commit_errors: int = 0


@dataclass
class _Pending:
    """A batch to commit: the message it came from (None for HQ's own ticks), where its
    outcome goes, and that outcome once committed."""

    index: int
    batch: IngestBatch
    outcome: Outcome
    message: Received | None


@dataclass
class _Group:
    """The messages of one group while they are ingested, before the commit."""

    outcomes: list[Outcome | None] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    claimed: set[tuple[str, int]] = field(default_factory=set)  # (node, seq) in this group

    def done(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def write(self, batch: IngestBatch, outcome: Outcome = "stored",
              message: Received | None = None) -> None:  # fmt: skip
        """`batch` is to be committed; the message's outcome is `outcome` once it is."""
        self.pending.append(_Pending(len(self.outcomes), batch, outcome, message))
        self.outcomes.append(None)


class Ingest:
    def __init__(self, store: Store, fusion: Fusion, crossings: CrossingDetector,
                 distress: DistressDetector, health: NodeHealthDetector,
                 flow: FlowStatistics | None = None,
                 on_commit: Callable[[IngestBatch], None] | None = None,
                 limits: IngestSection | None = None,
                 region: tuple[float, float] | None = None,
                 geography: StoreGeography | None = None):  # fmt: skip
        """`on_commit(batch)` is called once per committed batch, after its commit, on the
        ingesting thread; what it raises is logged and counted, and ingest goes on.
        `limits`: what is accepted from a post (hq.toml's [ingest]); `region`: the (lat,
        lon) posts are around (HQ's origin; None: posts anywhere). `geography`, the
        detectors' border, zones and places, is brought up to date with the store at the
        start of every group and tick."""
        self.store = store
        self.fusion = fusion
        self.crossings = crossings
        self.distress = distress
        self.health = health
        self.flow = flow or FlowStatistics()
        self.on_commit = on_commit
        self.limits = limits or IngestSection()
        self.bounds = MessageBounds(self.limits, region)
        self.rate = PostRateLimit(self.limits.rate_per_s, self.limits.rate_burst)
        self._dead_letters_seen: dict[tuple[str, str], int] = {}  # (topic, kind) -> count
        # on_delivered(node_key, seq): the store holds this batch (delivery.py tells the node)
        self.on_delivered: Callable[[str, int], None] | None = None
        self.geography = geography
        self.counters = IngestCounters()
        self._lock = threading.Lock()  # groups and ticks take turns

    def handle(self, topic: str, payload: bytes, received: float) -> Outcome:
        """Ingest and commit one message."""
        return self.handle_many([Received(topic, payload, received)])[0]

    def handle_many(self, messages: Sequence[Received]) -> list[Outcome]:
        """Ingest `messages` in order and commit them in one transaction; an outcome each,
        all of them committed (but "failed" ones) when this returns."""
        with self._lock:
            if self.geography is not None:
                self.geography.refresh()
            group = _Group()
            for message in messages:
                self.counters.messages += 1
                with _collector_paused():
                    self._ingest(message, group)
            self._commit(group)
            return group.outcomes

    def tick(self, now: float) -> None:
        """Coast and end stale fused tracks; raise alerts for silent posts."""
        with self._lock:
            if self.geography is not None:
                self.geography.refresh()
            update = self.fusion.tick(now)
            events = self.health.silence(now) + [self._rate_alert(post, now, raised=False)
                                                 for post in self.rate.recovered(now)]
            fused, tracks = self._changed_tracks(update)
            events += self._track_alerts(tracks)
            if len(fused) or events:
                group = _Group()
                group.write(IngestBatch(now, fused_tracks=fused, alerts=self._wire_alerts(events)))
                self._commit(group)

    # --- messages ----------------------------------------------------------------------

    def _ingest(self, message: Received, group: _Group) -> None:
        if self._refused_unread(message, group):
            return
        try:
            parsed = self._validated(message.topic, message.payload)
            self.bounds.check(parsed, message.received)
        except OutOfBounds as error:
            # The kind names its counter.
            setattr(self.counters, error.kind, getattr(self.counters, error.kind) + 1)
            group.write(self._dead_letter(message, error, "out of bounds"), "dead_letter", message)
            return
        except ValueError as error:  # pydantic's ValidationError and UnsupportedVersion too
            group.write(self._dead_letter(message, error), "dead_letter", message)
            return
        try:
            self._ingest_valid(parsed, message, group)
        except Exception as error:  # a fault of ours; the message is kept for a look and a replay
            log.exception("message not ingested topic=%s", message.topic)
            group.write(self._dead_letter(message, error, "not ingested"), "dead_letter", message)

    def _refused_unread(self, message: Received, group: _Group) -> bool:
        """A message over its post's rate, or retained where only a status may be: kept as a
        short dead letter (no payload, for a flood; its size and hash), not read."""
        parts = message.topic.split("/")
        post = "/".join(parts[2:4]) if len(parts) == 5 else message.topic
        if not self.rate.allow(post, message.received):
            self.counters.rate_limited += 1
            alerts = []
            if self.rate.refused(post, message.received):
                alerts = self._wire_alerts([self._rate_alert(post, message.received, True)])
            error = ValueError(f"post {post} sent more than {self.limits.rate_per_s:g} "
                               f"messages/s (burst {self.limits.rate_burst})")  # fmt: skip
            letter = self._dead_letter(message, error, "rate limit", keep_payload=False)
            group.write(IngestBatch(message.received, dead_letters=letter.dead_letters,
                                    alerts=alerts), "dead_letter", message)  # fmt: skip
            return True
        if message.retained and parts[-1] != "status":
            self.counters.retained_refused += 1
            error = ValueError("a retained message; only a post's status may be retained")
            group.write(self._dead_letter(message, error, "refused"), "dead_letter", message)
            return True
        return False

    def _rate_alert(self, post: str, now: float, raised: bool) -> AlertEvent:
        ref = id_part(*post.split("/", 1))
        if not POST_ALERT_ID.fullmatch(ref):  # not a post's topic: no name to put in an id
            ref = "unknown"
        message = (f"post {post} sends more than {self.limits.rate_per_s:g} messages/s: "
                   "the excess is refused" if raised else f"post {post} within its rate again")
        return AlertEvent(f"rate-limit-{ref}", "node", "raised" if raised else "cleared",
                          "warning" if raised else "info", now, message)  # fmt: skip

    def _ingest_valid(self, parsed, message: Received, group: _Group) -> None:
        if isinstance(parsed, TrackBatch):
            self._track_batch(parsed, message, group)
        elif isinstance(parsed, NodeStatus):
            events = self.health.status(parsed, message.received)
            group.write(IngestBatch(message.received, statuses=[parsed],
                                    alerts=self._wire_alerts(events)), message=message)  # fmt: skip
        elif isinstance(parsed, VehicleTelemetry):  # our own drone: stored, then on the picture
            self.counters.telemetry += 1
            group.write(IngestBatch(message.received, telemetry=[parsed]), message=message)
        else:
            group.write(IngestBatch(message.received, alerts=[parsed]), message=message)

    def _validated(self, topic: str, payload: bytes):
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        site, node, channel = topics.parse(topic)
        message = _parse(payload, _CHANNELS[channel])
        if (message.site, message.node) != (site, node):
            raise ValueError(f"message from {message.site}/{message.node} on {site}/{node}'s topic")
        if not isinstance(message, _CHANNELS[channel]):
            raise ValueError(f"a {type(message).__name__} on the {channel} channel")
        if isinstance(message, Alert):  # kept in the post's namespace: it replaces no other's
            message = message.model_copy(
                update={"alert_id": post_alert_id(site, node, message.alert_id)})
        return message

    def _track_batch(self, batch: TrackBatch, message: Received, group: _Group) -> None:
        received = message.received
        key = node_key(batch.site, batch.node)
        # Seen if committed before, or earlier in this very group (not yet committed).
        if (key, batch.seq) in group.claimed:  # its first copy is confirmed once committed
            self.counters.duplicates += 1
            group.done("duplicate")
            return
        if self.store.already_seen(key, batch.seq):
            self.counters.duplicates += 1
            group.done("duplicate")
            self._delivered(key, batch.seq)
            return
        group.claimed.add((key, batch.seq))
        update = self.fusion.ingest(batch, received)
        fused, tracks = self._changed_tracks(update)
        events = self._track_alerts(tracks)
        node_tracks = _node_tracks(key, batch.tracks, update.history)
        group.write(IngestBatch(
            received, node_key=key, seq=batch.seq, node_tracks=node_tracks, fused_tracks=fused,
            history=_history_points(update), alerts=self._wire_alerts(events),
        ), message=message)  # fmt: skip

    def _track_alerts(self, tracks: GlobalTracks) -> list[AlertEvent]:
        """Crossings, zone entries and distress of the fused tracks a batch or a tick
        changed. Ticks go through the same detectors: a track that a tick ends must still
        settle the crossing it was waiting on (for its class), or the crossing is lost."""
        columns = _alert_columns(tracks)
        crossings = self.crossings.update_many(columns)
        for event in crossings:
            self.flow.add(event)
        return crossings + self.distress.update_many(columns)

    def _changed_tracks(self, update: FusionUpdate) -> tuple[FusedTracks, GlobalTracks]:
        """The fused tracks created or updated (as they stand now) and those that ended (as
        they last stood): for the store, and as columns for the alert detectors."""
        changed = set(update.created) | set(update.updated)
        live = self.fusion.tracks(changed) if changed else GlobalTracks.empty()
        tracks = GlobalTracks.concat([live, update.ended_tracks])
        if not len(tracks):
            return FusedTracks.of([]), tracks
        return _fused(tracks, self.fusion.frame.alt), tracks

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

    def _dead_letter(self, message: Received, error: Exception, kind: str = "invalid",
                     keep_payload: bool = True) -> IngestBatch:  # fmt: skip
        if isinstance(error, UnsupportedVersion):
            kind = "unsupported version"
        # NUL cannot go into a PostgreSQL text column; an error may quote the payload's bytes.
        reason = f"{kind}: {str(error)[:1000]}".replace("\0", "\\x00")
        self.counters.dead_letters += 1
        self._log_dead_letter(message.topic, kind, reason)
        # The first bytes are enough to see what it was; the size and hash say which it was.
        data = bytes(message.payload)
        kept = data[:self.limits.dead_letter_bytes] if keep_payload else b""
        letter = DeadLetter(message.received, message.topic, reason, kept,
                            payload_size=len(data),
                            payload_sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
        return IngestBatch(message.received, dead_letters=[letter])

    def _log_dead_letter(self, topic: str, kind: str, reason: str) -> None:
        """The first few dead letters of a kind from a topic are logged, then one in
        DEAD_LETTER_LOG_EVERY: a flood must not become a flood of log lines (every one is
        in the store, and counted)."""
        seen = self._dead_letters_seen.get((topic, kind), 0) + 1
        self._dead_letters_seen[(topic, kind)] = seen
        if seen <= DEAD_LETTERS_LOGGED or seen % DEAD_LETTER_LOG_EVERY == 0:
            log.warning("dead letter topic=%s reason=%s (%d of this kind from it)", topic,
                        reason[:200], seen)  # fmt: skip

    # --- the commit ----------------------------------------------------------------------

    def _commit(self, group: _Group) -> None:
        if not group.pending:
            return
        self.counters.groups += 1
        written = self._write(group.pending)
        for pending, ok in zip(group.pending, written, strict=True):
            if ok in (True, False) and pending.batch.seq is not None:  # held by the store
                self._delivered(pending.batch.node_key, pending.batch.seq)
            if ok is None:
                self.counters.failed += 1
                group.outcomes[pending.index] = "failed"
            elif ok == "dead_letter":  # the store refused it alone: kept as a dead letter
                group.outcomes[pending.index] = "dead_letter"
            elif not ok:  # a repeat that raced past the early check
                self.counters.duplicates += 1
                group.outcomes[pending.index] = "duplicate"
            else:
                if pending.outcome == "stored":
                    self.counters.stored += 1
                group.outcomes[pending.index] = pending.outcome
                self._notify(pending.batch)

    def _write(self, pending: list[_Pending]) -> list[bool | Literal["dead_letter"] | None]:
        """The store's answer per batch: True (written), False (a repeat), "dead_letter"
        (the store refused this batch alone; it was kept as a dead letter instead) or None
        (not written: the store refuses everything, so it is sent again later).

        One batch the store refuses rolls back the whole group; then the group is split in
        halves until the refused batches stand alone, so that all others still go in.
        """
        try:
            return self.store.commit_ingest_many([p.batch for p in pending])
        except Exception as error:
            if len(pending) == 1:
                return [self._refused(pending[0], error)]
            log.warning("group of %d batches not committed: %s; splitting it", len(pending),
                        error)  # fmt: skip
        half = len(pending) // 2
        first = self._write(pending[:half])
        if all(ok is None for ok in first):  # the store is down, not one batch bad: stop here
            return first + [None] * (len(pending) - half)
        return first + self._write(pending[half:])

    def _refused(self, pending: _Pending, error: Exception) -> Literal["dead_letter"] | None:
        """A batch the store refused on its own: its message becomes a dead letter, unless the
        store refuses that too (it is down), or there is no message (one of HQ's ticks)."""
        batch = pending.batch
        log.error("batch not committed node=%s seq=%s error=%r", batch.node_key, batch.seq, error)
        if pending.message is None:
            return None
        letter = self._dead_letter(pending.message, error, "not stored", keep_payload=not
                                   batch.dead_letters)  # fmt: skip
        try:
            self.store.commit_ingest_many([letter])
        except Exception:
            self.counters.dead_letters -= 1
            log.exception("dead letter not committed either topic=%s", pending.message.topic)
            return None
        return "dead_letter"

    def _delivered(self, node_key: str, seq: int) -> None:
        if self.on_delivered is not None:
            self.on_delivered(node_key, seq)

    def _notify(self, batch: IngestBatch) -> None:
        if self.on_commit is None:
            return
        try:
            self.on_commit(batch)
        except Exception:  # a listener's fault must never stop ingest
            self.counters.on_commit_errors += 1
            log.exception("on_commit failed node=%s seq=%s", batch.node_key, batch.seq)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one message is ingested.

    A TrackBatch becomes a dozen tracked containers per track (models, their dicts,
    lists, tuples), all freed by reference counting when the message is done. Left
    running, the collector would walk them once per young generation and promote
    those still alive (all of the message's) towards the oldest one, whose full
    collections walk the whole heap. Paused, it sees none of them. It is resumed (only
    if it was running: another thread may have paused it) as soon as the message is
    done, and collects then whatever cycles the other threads left meanwhile.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(payload: bytes, expected: type) -> Alert | NodeStatus | TrackBatch | VehicleTelemetry:
    """The message in `payload`, parsed once as the kind its channel carries.

    `decode` reads a header first to learn the kind, which parses the JSON twice. A
    message of the expected kind that names its kind and version needs only one pass;
    anything else goes through `decode`, which accepts or says exactly what is wrong.
    """
    try:
        message = expected.model_validate_json(payload)
        if {"kind", "schema_version"} <= message.model_fields_set:
            return message
    except ValueError:
        pass
    return decode(payload)


def _node_tracks(key: str, tracks: list[Track], history: History) -> NodeTracks:
    """The batch's tracks for the store, each with the published global track it fed."""
    global_of = dict(zip(history.local_id.tolist(), history.global_id.tolist(), strict=True))
    return NodeTracks.of(key, tracks, [_published(global_of.get(t.track_id)) for t in tracks])


def _published(global_id: int | None) -> int | None:
    return None if global_id is None or global_id < 0 else int(global_id)


def _fused(tracks: GlobalTracks, ground_alt: float) -> FusedTracks:
    n = len(tracks)
    return FusedTracks(
        global_id=tracks.id, time=tracks.time, lat=tracks.lat, lon=tracks.lon,
        alt=np.full(n, ground_alt), state=tracks.x, covariance=tracks.P.reshape(n, 16),
        target_class=tuple(CLASSES[c] for c in tracks.target_class.tolist()),
        status=tuple(WIRE_STATUSES[s] for s in tracks.status.tolist()), quality=tracks.quality,
        sources=tuple(tuple(f"{node}:{local}" for node, local in s) for s in tracks.sources),
    )  # fmt: skip


def _alert_columns(tracks: GlobalTracks) -> TrackColumns:
    """The fused tracks as the alert detectors' `update_many` takes them."""
    return TrackColumns(tracks.id, tracks.time, tracks.x[:, 0], tracks.x[:, 1], tracks.class_p,
                        tracks.status == WIRE_ENDED, tracks.count, tracks.measured,
                        tracks.x[:, 2], tracks.x[:, 3])  # fmt: skip


def _history_points(update: FusionUpdate) -> HistoryPoints:
    h = update.history
    keep = np.flatnonzero(h.global_id >= 0)
    x, P = h.x[keep], h.P[keep]
    return HistoryPoints(h.global_id[keep], h.time[keep], h.lat[keep], h.lon[keep],
                         x[:, 0], x[:, 1], x[:, 2], x[:, 3], P[:, 0, 0], P[:, 1, 1],
                         P[:, 0, 1])  # fmt: skip
