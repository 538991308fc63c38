"""What HQ must tell its operators: border crossings, people in distress, failing posts.

Every detector here is fed the fused picture one update at a time and
answers with alert events: raised, updated or cleared. An alert keeps its id
for its whole life, so the store and the operators' page can follow it.

- Border crossing: a track's path crosses the border polyline (direction
  relative to the side of the home post), or enters a configured zone.
  Animals never raise one.
- Distress (search and rescue): person tracks that stay within a radius for
  a dwell time, in open desert (away from posts and settlements). People
  stranded together are one alert listing their tracks; it is raised once,
  updated while it lasts, and cleared when they move on. A track that is
  lost while its alert stands does not clear it: losing sight of stranded
  people is no reason to stop looking.
- Nodes: a post offline (its Last Will, or silent too long), a drone's link
  lost, a drone's battery low, an uplink backlog growing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wire.geo import EnuFrame, segment_crossing
from wire.messages import NodeStatus

LatLon = tuple[float, float]


@dataclass(frozen=True)
class TrackView:
    """What alerting needs of a fused track, in HQ's ENU frame."""

    global_id: int
    time: float
    east: float
    north: float
    target_class: str  # person, vehicle, animal, aircraft, unknown
    ended: bool = False


@dataclass
class AlertEvent:
    alert_id: str
    kind: str  # border_crossing, zone_entry, distress, node_offline, drone_link, battery, backlog
    change: str  # raised, updated, cleared
    severity: str  # info, warning, critical
    time: float
    message: str
    position: tuple[float, float] | None = None  # lat, lon
    track_ids: tuple[int, ...] = ()
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    radius_m: float  # within this, the desert is not open: help is at hand


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[LatLon, ...]


@dataclass(frozen=True)
class AlertConfig:
    border: tuple[LatLon, ...]
    home: LatLon  # a point on the side of the border HQ guards (a post)
    zones: tuple[Zone, ...] = ()
    places: tuple[Place, ...] = ()  # posts and settlements
    distress_radius_m: float = 30.0
    distress_dwell_s: float = 600.0
    distress_update_s: float = 300.0  # a standing alert is refreshed this often
    node_silence_s: float = 120.0
    battery_low: float = 0.2
    backlog_high: int = 1000


def _inside(point, polygon: np.ndarray) -> bool:
    """Even-odd rule."""
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


class CrossingDetector:
    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.frame = frame
        self.border = _to_enu(frame, config.border)
        self.home = _to_enu(frame, [config.home])[0]
        self.zones = [(z.name, _to_enu(frame, z.polygon)) for z in config.zones]
        self._last: dict[int, tuple[float, np.ndarray]] = {}

    def update(self, track: TrackView) -> list[AlertEvent]:
        point = np.array([track.east, track.north])
        previous = self._last.get(track.global_id)
        self._last[track.global_id] = (track.time, point)
        if track.ended:
            del self._last[track.global_id]
        if previous is None or track.target_class == "animal":
            return []
        t0, before = previous
        events = []
        for segment, (p, q) in enumerate(zip(self.border[:-1], self.border[1:], strict=True)):
            fraction = segment_crossing(before, point, p, q)
            if fraction is not None:
                event = self._crossing(track, t0, before, point, fraction, p, q)
                event.details["segment"] = segment
                events.append(event)
        for name, polygon in self.zones:
            if _inside(point, polygon) and not _inside(before, polygon):
                events.append(self._zone_entry(track, name))
        return events

    def _crossing(self, track, t0, before, point, fraction, p, q) -> AlertEvent:
        at = before + fraction * (point - before)
        when = t0 + fraction * (track.time - t0)
        side_after = _side(p, q, point)
        inbound = side_after * _side(p, q, self.home) > 0
        lat, lon, _ = self.frame.to_geodetic(at[0], at[1], 0.0)
        direction = "inbound" if inbound else "outbound"
        return AlertEvent(
            alert_id=f"crossing-{track.global_id}-{int(when)}", kind="border_crossing",
            change="raised", severity="warning", time=when,
            message=f"{track.target_class} track {track.global_id} crossed the border "
                    f"{direction}",
            position=(float(lat), float(lon)), track_ids=(track.global_id,),
            details={"direction": direction, "class": track.target_class},
        )  # fmt: skip

    def _zone_entry(self, track, zone: str) -> AlertEvent:
        lat, lon, _ = self.frame.to_geodetic(track.east, track.north, 0.0)
        return AlertEvent(
            alert_id=f"zone-{zone}-{track.global_id}-{int(track.time)}", kind="zone_entry",
            change="raised", severity="warning", time=track.time,
            message=f"{track.target_class} track {track.global_id} entered zone {zone}",
            position=(float(lat), float(lon)), track_ids=(track.global_id,),
            details={"zone": zone, "class": track.target_class},
        )  # fmt: skip


def _side(p, q, point) -> float:
    return (q[0] - p[0]) * (point[1] - p[1]) - (q[1] - p[1]) * (point[0] - p[0])


def _to_enu(frame: EnuFrame, points) -> np.ndarray:
    lat, lon = np.array(points, dtype=float).reshape(-1, 2).T
    east, north, _ = frame.from_geodetic(lat, lon, np.full_like(lat, frame.alt))
    return np.stack([east, north], axis=1)


@dataclass
class _Stay:
    anchor: np.ndarray  # where the track came within the radius of where it stays
    since: float
    last_seen: float
    last_point: np.ndarray  # where it is now
    ended: bool = False


class DistressDetector:
    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.config = config
        self.frame = frame
        self.places = [(_to_enu(frame, [(p.lat, p.lon)])[0], p.radius_m) for p in config.places]
        self._stays: dict[int, _Stay] = {}
        self._alerts: dict[str, set[int]] = {}  # alert id -> the tracks it is about
        self._refreshed: dict[str, float] = {}  # alert id -> time of its last event
        self._stranded: set[int] = set()  # tracks past the dwell time in open desert
        self._next = 1

    def update(self, track: TrackView) -> list[AlertEvent]:
        if track.target_class != "person":
            return []
        point = np.array([track.east, track.north])
        stay = self._stays.get(track.global_id)
        if track.ended:
            if stay is not None:
                stay.ended = True
            return []
        if stay is None or np.hypot(*(point - stay.anchor)) > self.config.distress_radius_m:
            self._stays[track.global_id] = _Stay(point, track.time, track.time, point)
            self._stranded.discard(track.global_id)
            return self._clear_moved(track)
        stay.last_seen, stay.last_point = track.time, point
        if track.global_id not in self._stranded:
            if (stay.last_seen - stay.since < self.config.distress_dwell_s
                    or not self._open_desert(stay.anchor)):
                return []
            self._stranded.add(track.global_id)
        return self._raise_or_update(track.global_id, track.time)

    def _open_desert(self, point) -> bool:
        return all(np.hypot(*(point - centre)) > radius for centre, radius in self.places)

    def _raise_or_update(self, track_id: int, now: float) -> list[AlertEvent]:
        """Raise, or refresh, the alert of the stranded group this track belongs to."""
        group = self._group_of(track_id, 4 * self.config.distress_radius_m)
        ids = set(group)
        alert_id = next((a for a, tracks in self._alerts.items() if tracks & ids), None)
        change = "updated"
        if alert_id is None:
            alert_id, change = f"distress-{self._next}", "raised"
            self._next += 1
        elif (self._alerts[alert_id] >= ids
              and now - self._refreshed[alert_id] < self.config.distress_update_s):
            return []  # nothing new about this group, and not yet time to refresh
        self._alerts[alert_id] = self._alerts.get(alert_id, set()) | ids
        self._refreshed[alert_id] = now
        return [self._event(alert_id, change, now, group)]

    def _group_of(self, track_id: int, link_m: float) -> dict[int, _Stay]:
        """The stranded tracks within `link_m` of this one, joined transitively."""
        group, frontier = {track_id: self._stays[track_id]}, [track_id]
        while frontier:
            anchor = self._stays[frontier.pop()].anchor
            for other in self._stranded - group.keys():
                if np.hypot(*(self._stays[other].anchor - anchor)) <= link_m:
                    group[other] = self._stays[other]
                    frontier.append(other)
        return group

    def _clear_moved(self, track: TrackView) -> list[AlertEvent]:
        events = []
        for alert_id, ids in list(self._alerts.items()):
            if track.global_id not in ids:
                continue
            ids.discard(track.global_id)
            if not ids:
                del self._alerts[alert_id], self._refreshed[alert_id]
                events.append(AlertEvent(alert_id, "distress", "cleared", "info", track.time,
                                         f"the people of {alert_id} are moving again",
                                         track_ids=(track.global_id,)))  # fmt: skip
        return events

    def _event(self, alert_id, change, now, group: dict[int, _Stay]) -> AlertEvent:
        centre = np.mean([s.last_point for s in group.values()], axis=0)
        lat, lon, _ = self.frame.to_geodetic(centre[0], centre[1], 0.0)
        since = min(s.since for s in group.values())
        people = len(group)
        return AlertEvent(
            alert_id=alert_id, kind="distress", change=change, severity="critical", time=now,
            message=f"{people} {'person' if people == 1 else 'people'} stationary in open "
                    f"desert for {(now - since) / 60:.0f} min: possible distress",
            position=(float(lat), float(lon)), track_ids=tuple(sorted(group)),
            details={"since": since, "people": people},
        )  # fmt: skip


class NodeHealthDetector:
    """Posts and their drones: raised when something fails, cleared when it recovers."""

    def __init__(self, config: AlertConfig):
        self.config = config
        self._last_seen: dict[str, float] = {}
        self._active: set[str] = set()

    def status(self, status: NodeStatus, received: float) -> list[AlertEvent]:
        node = f"{status.site}/{status.node}"
        self._last_seen[node] = received
        checks = [(f"node-offline-{node}", "node_offline", "critical",
                   status.state == "offline", f"post {node} is offline")]  # fmt: skip
        for drone in status.drones:
            key = f"{node}/{drone.sysid}"
            checks.append((f"drone-link-{key}", "drone_link", "warning", not drone.connected,
                           f"drone {drone.sysid} of {node} lost its link"))  # fmt: skip
            low = drone.battery_remaining is not None and (
                drone.battery_remaining < self.config.battery_low)
            checks.append((f"battery-{key}", "battery", "warning", low,
                           f"drone {drone.sysid} of {node} battery low"))  # fmt: skip
        checks.append((f"backlog-{node}", "backlog", "warning",
                       status.outbox_depth > self.config.backlog_high,
                       f"post {node} has {status.outbox_depth} messages waiting"))  # fmt: skip
        return [e for check in checks if (e := self._transition(*check, status.time))]

    def silence(self, now: float) -> list[AlertEvent]:
        """Posts that said nothing for too long, without a Last Will reaching HQ."""
        events = []
        for node, seen in self._last_seen.items():
            silent = now - seen > self.config.node_silence_s
            event = self._transition(f"node-silent-{node}", "node_offline", "critical", silent,
                                     f"post {node} silent for {now - seen:.0f} s", now)  # fmt: skip
            if event:
                events.append(event)
        return events

    def _transition(self, alert_id, kind, severity, failing, message, now) -> AlertEvent | None:
        if failing and alert_id not in self._active:
            self._active.add(alert_id)
            return AlertEvent(alert_id, kind, "raised", severity, now, message)
        if not failing and alert_id in self._active:
            self._active.discard(alert_id)
            return AlertEvent(alert_id, kind, "cleared", "info", now, f"recovered: {message}")
        return None
