"""Streams HQ's picture to TAK as Cursor-on-Target over TCP.

`TakStreamer` runs one thread. Every `period_s` it reads the current fused
tracks and open distress alerts from its source, turns them into CoT events
(cot.py) and writes them to one TCP connection that HQ opens to the
configured TAK server or client.

CoT is a stream of states, not of changes: every period sends the whole
picture again, and each event goes stale a few periods later. So nothing is
queued while the link is down; a period that cannot be sent is dropped and
the next one repairs the picture. Tracks that end or leave the source are
sent once more with stale = now, so TAK drops them without waiting. Our own
drones go as friendly UAVs with their cameras' footprints (friendly.py).

It never blocks HQ (it has its own thread and its own read connection to the
store), bounds its work per period (`max_events`), and a record that cannot
be turned into an event is skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, replace

from hq.store.records import FusedTrack
from hq.tak.config import TakConfig
from hq.tak.cot import alert_event, removal, to_bytes, track_event
from hq.tak.friendly import drone_event, drone_uid, footprint_event
from hq.tak.source import OperatorLabel, TakSource
from wire.messages import Alert, TrackStatus, VehicleTelemetry

log = logging.getLogger(__name__)


@dataclass
class TakCounters:
    periods: int = 0
    sent: int = 0  # events written to the socket
    skipped: int = 0  # records that could not become an event
    dropped: int = 0  # events over max_events, or built while the link was down
    errors: int = 0  # failed connects, sends and source reads
    connects: int = 0
    reconnects: int = 0  # connects after the first


class TakStreamer:
    """Sends `source`'s tracks and distress alerts to `config.host:port` every period."""

    def __init__(self, config: TakConfig, source: TakSource):
        self.config = config
        self.source = source
        self.counters = TakCounters()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._backoff = config.backoff_min_s
        self._next_connect = 0.0  # monotonic time of the next connection attempt
        # What TAK is showing, so that what disappears can be removed.
        self._shown_tracks: dict[int, FusedTrack] = {}
        self._shown_alerts: dict[str, Alert] = {}
        self._shown_drones: dict[str, VehicleTelemetry] = {}

    def start(self) -> TakStreamer:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hq-tak", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._disconnect()

    # -- one period -----------------------------------------------------------------------

    def poll(self, now: float) -> list[bytes]:
        """This period's events: alert cancels, alerts, our drones and their footprints,
        removals, then live tracks.

        Updates what TAK is taken to show. Bad records are skipped and counted.
        """
        cfg = self.config
        events: list[bytes] = []
        bad: list[str] = []

        def add(what: str, build, *args) -> bool:
            """Append build(*args) if it is an event; False when the record is bad."""
            try:
                event = build(*args)
            except Exception as error:  # whatever is wrong with one record, the rest go out
                self.counters.skipped += 1
                bad.append(f"{what}: {error}")
                return False
            if event is not None:
                events.append(to_bytes(event))
            return True

        alerts = {a.alert_id: a for a in self.source.open_alerts() if a.alert_type == "distress"}
        for alert_id in self._shown_alerts.keys() - alerts.keys():
            cleared = self._shown_alerts[alert_id].model_copy(update={"active": False})
            add(f"alert {alert_id}", alert_event, cleared, now, 0.0, cfg.uid_prefix)
        self._shown_alerts = {
            alert_id: alert for alert_id, alert in alerts.items()
            if add(f"alert {alert_id}", alert_event, alert, now, cfg.stale_s, cfg.uid_prefix)
        }  # fmt: skip

        self._poll_drones(now, add)

        live: dict[int, FusedTrack] = {}
        ended: dict[int, FusedTrack] = {}
        for track in self.source.current_tracks():
            (ended if track.status == TrackStatus.ENDED else live)[track.global_id] = track
        for gid, shown in self._shown_tracks.items():
            if gid not in live:  # ended, or gone from the source: its last state, stale now
                add(f"track {gid}", removal, ended.get(gid, shown), now, cfg.uid_prefix)

        newest_first = sorted(live.values(), key=lambda t: t.time, reverse=True)
        room = max(cfg.max_events - len(events), 0)
        self.counters.dropped += max(len(newest_first) - room, 0)
        labels = self.source.labels()
        self._shown_tracks = {
            t.global_id: t for t in newest_first[:room]
            if add(f"track {t.global_id}", self._track_event, t, labels.get(t.global_id), now)
        }  # fmt: skip
        if bad:
            log.warning("tak skipped bad records count=%d first=%r", len(bad), bad[0])
        return events

    def _poll_drones(self, now: float, add) -> None:
        """Our drones and their cameras' footprints; one silent too long is withdrawn."""
        cfg = self.config
        heard = {drone_uid(t): t for t in self.source.drones()
                 if now - t.time <= cfg.drone_silence_s}  # fmt: skip
        for uid in self._shown_drones.keys() - heard.keys():
            silent = self._shown_drones[uid]
            add(f"drone {uid}", drone_event, silent, now, 0.0, cfg.uid_prefix)
            for footprint in silent.footprints:
                add(f"footprint {uid}", footprint_event, silent, footprint, now, 0.0,
                    cfg.uid_prefix)  # fmt: skip
        self._shown_drones = {
            uid: t for uid, t in heard.items()
            if add(f"drone {uid}", drone_event, t, now, cfg.stale_s, cfg.uid_prefix)
        }  # fmt: skip
        for uid, telemetry in self._shown_drones.items():
            for footprint in telemetry.footprints:
                add(f"footprint {uid}", footprint_event, telemetry, footprint, now, cfg.stale_s,
                    cfg.uid_prefix)  # fmt: skip

    def _track_event(self, track: FusedTrack, label: OperatorLabel | None, now: float):
        """The track's event, with what an operator set: its class, and its affiliation."""
        cfg = self.config
        if label is not None and label.target_class:
            track = replace(track, target_class=label.target_class)
        affiliation = label.affiliation if label is not None else None
        return track_event(track, now, cfg.stale_s, affiliation, cfg.altitude_sigma_m,
                               cfg.uid_prefix)  # fmt: skip

    # -- the thread and the connection ----------------------------------------------------

    def _run(self) -> None:
        log.info("tak streaming to host=%s port=%d period_s=%.1f", self.config.host,
                 self.config.port, self.config.period_s)  # fmt: skip
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self._period()
            # Fixed-rate ticks; after an overlong period, start the next one now, not late twice.
            next_tick = max(next_tick + self.config.period_s, time.monotonic())
            self._stop.wait(next_tick - time.monotonic())
        log.info("tak stopped counters=%s", self.counters)

    def _period(self) -> None:
        self.counters.periods += 1
        try:
            events = self.poll(time.time())
        except Exception:  # the source (the store) failing must not end the stream
            self.counters.errors += 1
            log.exception("tak could not read the source")
            return
        if not events:
            return
        if self._sock is None and not self._connect():
            self.counters.dropped += len(events)
            return
        try:
            self._drain()
            self._sock.sendall(b"".join(events))
        except OSError as error:
            self.counters.errors += 1
            self.counters.dropped += len(events)
            log.warning("tak send failed host=%s port=%d error=%s", self.config.host,
                        self.config.port, error)  # fmt: skip
            self._disconnect()
            self._next_connect = time.monotonic()  # the first retry is immediate; then back off
            return
        self.counters.sent += len(events)

    def _connect(self) -> bool:
        now = time.monotonic()
        if now < self._next_connect:
            return False
        cfg = self.config
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.connect_timeout_s)
        except OSError as error:
            self.counters.errors += 1
            self._next_connect = now + self._backoff
            log.warning("tak connect failed host=%s port=%d error=%s retry_in_s=%.1f", cfg.host,
                        cfg.port, error, self._backoff)  # fmt: skip
            self._backoff = min(self._backoff * 2.0, cfg.backoff_max_s)
            return False
        sock.settimeout(cfg.send_timeout_s)
        self._sock = sock
        self._backoff = cfg.backoff_min_s
        if self.counters.connects:
            self.counters.reconnects += 1
        self.counters.connects += 1
        self.connected.set()
        log.info("tak connected host=%s port=%d", cfg.host, cfg.port)
        return True

    def _drain(self) -> None:
        """Read and discard what the peer sent, and notice when it has closed.

        A TAK server relays other clients' events to us too; unread, they would
        fill the buffers until the server gives up on us. A peer that closed shows
        here as end of file, before we write into a dead connection.
        """
        self._sock.settimeout(0.0)  # a socket with a timeout would wait on an empty buffer
        try:
            while True:
                try:
                    data = self._sock.recv(65536)
                except BlockingIOError:
                    return
                if not data:
                    raise ConnectionResetError("the TAK peer closed the connection")
        finally:
            self._sock.settimeout(self.config.send_timeout_s)

    def _disconnect(self) -> None:
        self.connected.clear()
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
