"""What HQ must tell its operators: border crossings, people in distress, failing posts.

Every detector here is fed the fused picture one update at a time (`update`)
and answers with alert events: raised, updated or cleared. An alert keeps its
id for its whole life, so the store and the operators' page can follow it.
Ingest feeds the track detectors all the tracks a batch changed at once
(`update_many`, columns of arrays): the geometric tests run on all of them
together, and only the few tracks that cross, enter or dwell go on through
`update`, so that both ways give the same events.

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
from numba import njit

from hq.fusion.tables import CLASSES, Slots
from wire.geo import EnuFrame, segment_crossing
from wire.messages import NodeStatus, TargetClass

LatLon = tuple[float, float]
_PERSON = CLASSES.index(TargetClass.PERSON)
_ANIMAL = CLASSES.index(TargetClass.ANIMAL)


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


@njit(cache=True)
def _paths_alerting(before, after, border, zone_points, zone_starts):
    """Which paths before[k] -> after[k] ((m, 2) each) cross a segment of the `border`
    polyline or enter a zone (zone z's polygon is zone_points[zone_starts[z]:zone_starts[z +
    1]]): `segment_crossing` and `_inside`, with the same arithmetic, on all paths at once."""
    found = np.zeros(before.shape[0], np.bool_)
    for k in range(before.shape[0]):
        a0, a1, b0, b1 = before[k, 0], before[k, 1], after[k, 0], after[k, 1]
        for j in range(border.shape[0] - 1):
            if _crosses(a0, a1, b0, b1, border[j], border[j + 1]):
                found[k] = True
        for z in range(zone_starts.shape[0] - 1):
            polygon = zone_points[zone_starts[z] : zone_starts[z + 1]]
            if _inside_kernel(b0, b1, polygon) and not _inside_kernel(a0, a1, polygon):
                found[k] = True
    return found


@njit(cache=True, inline="always")
def _crosses(a0, a1, b0, b1, p, q):
    r0, r1 = b0 - a0, b1 - a1
    s0, s1 = q[0] - p[0], q[1] - p[1]
    denominator = r0 * s1 - r1 * s0
    if abs(denominator) < 1e-12:
        return False  # parallel
    offset0, offset1 = p[0] - a0, p[1] - a1
    u = (offset0 * s1 - offset1 * s0) / denominator
    v = (offset0 * r1 - offset1 * r0) / denominator
    return 0.0 <= u < 1.0 and 0.0 <= v <= 1.0


@njit(cache=True, inline="always")
def _inside_kernel(x, y, polygon):
    inside = False
    n = polygon.shape[0]
    for i in range(n):
        x0, y0 = polygon[i, 0], polygon[i, 1]
        x1, y1 = polygon[(i + 1) % n, 0], polygon[(i + 1) % n, 1]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


class _PerTrack(Slots):
    """Columns with a row per global track, found by its id."""

    def __init__(self, columns: dict):
        super().__init__(columns)
        self.index: dict[int, int] = {}

    def rows(self, ids: list[int]) -> np.ndarray:
        """Each id's row; -1 for an id not held."""
        get = self.index.get
        return np.array([get(i, -1) for i in ids], np.int64)

    def add(self, track_id: int) -> int:
        self.index[track_id] = row = self.allocate()
        return row

    def remove(self, track_id: int) -> None:
        self.release(self.index.pop(track_id))


def _views(ids, times, east, north, classes, ended) -> list[TrackView]:
    names = [str(CLASSES[c]) for c in classes.tolist()]
    return list(map(TrackView, ids.tolist(), times.tolist(), east.tolist(), north.tolist(),
                    names, ended.tolist()))  # fmt: skip


def _one_at_a_time(ids: np.ndarray) -> bool:
    """A track twice in one call: its updates depend on each other, so they go in order."""
    return np.unique(ids).size < ids.size


class CrossingDetector:
    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.frame = frame
        self.border = _to_enu(frame, config.border)
        self.home = _to_enu(frame, [config.home])[0]
        self.zones = [(z.name, _to_enu(frame, z.polygon)) for z in config.zones]
        polygons = [polygon for _, polygon in self.zones]
        self._zone_points = np.concatenate(polygons) if polygons else np.empty((0, 2))
        self._zone_starts = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int64)
        nowhere = np.zeros((1, 2))
        _paths_alerting(nowhere, nowhere, self.border, self._zone_points, self._zone_starts)
        self._last = _PerTrack({"time": ((), np.float64, np.nan),
                                "point": ((2,), np.float64, np.nan)})  # fmt: skip

    def update(self, track: TrackView) -> list[AlertEvent]:
        point = np.array([track.east, track.north])
        last, row = self._last, self._last.index.get(track.global_id)
        previous = None if row is None else (float(last.time[row]), last.point[row].copy())
        if track.ended:
            if row is not None:
                last.remove(track.global_id)
        else:
            row = last.add(track.global_id) if row is None else row
            last.time[row], last.point[row] = track.time, point
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

    def update_many(self, ids: np.ndarray, times: np.ndarray, east: np.ndarray,
                    north: np.ndarray, classes: np.ndarray,
                    ended: np.ndarray) -> list[AlertEvent]:  # fmt: skip
        """`update` of many tracks (classes as indices into CLASSES): the same events in the
        same order. The crossing and zone tests run on all rows at once; only the rows that
        cross or enter something go through `update`, the others just keep their point."""
        if _one_at_a_time(ids):
            return [e for view in _views(ids, times, east, north, classes, ended)
                    for e in self.update(view)]  # fmt: skip
        last, id_list = self._last, ids.tolist()
        row = last.rows(id_list)
        seen = row >= 0
        point = np.column_stack([east, north])
        watched = np.flatnonzero(seen & (classes != _ANIMAL))
        eventful = np.zeros(ids.size, bool)
        eventful[watched] = _paths_alerting(last.point[row[watched]], point[watched],
                                            self.border, self._zone_points, self._zone_starts)
        quiet = ~eventful
        for k in np.flatnonzero(quiet & ended & seen).tolist():
            last.remove(id_list[k])
        for k in np.flatnonzero(quiet & ~ended & ~seen).tolist():
            row[k] = last.add(id_list[k])
        keep = quiet & ~ended
        last.time[row[keep]], last.point[row[keep]] = times[keep], point[keep]
        chosen = np.flatnonzero(eventful)
        return [e for view in _views(ids[chosen], times[chosen], east[chosen], north[chosen],
                                     classes[chosen], ended[chosen])
                for e in self.update(view)]  # fmt: skip

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


class DistressDetector:
    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.config = config
        self.frame = frame
        self.places = [(_to_enu(frame, [(p.lat, p.lon)])[0], p.radius_m) for p in config.places]
        self._centres = np.array([centre for centre, _ in self.places]).reshape(-1, 2)
        self._radii = np.array([radius for _, radius in self.places])
        self._stays = _PerTrack({
            # where the track came within the radius of where it stays
            "anchor": ((2,), np.float64, np.nan),
            "since": ((), np.float64, np.nan),
            "last_seen": ((), np.float64, np.nan),
            "last_point": ((2,), np.float64, np.nan),  # where it is now
            "ended": ((), np.bool_, False),
        })  # fmt: skip
        self._alerts: dict[str, set[int]] = {}  # alert id -> the tracks it is about
        self._refreshed: dict[str, float] = {}  # alert id -> time of its last event
        self._stranded: set[int] = set()  # tracks past the dwell time in open desert

    def update(self, track: TrackView) -> list[AlertEvent]:
        if track.target_class != "person":
            return []
        point = np.array([track.east, track.north])
        stays, row = self._stays, self._stays.index.get(track.global_id)
        if track.ended:
            if row is not None:
                stays.ended[row] = True
            return []
        if row is None or np.hypot(*(point - stays.anchor[row])) > self.config.distress_radius_m:
            row = stays.add(track.global_id) if row is None else row
            self._start_stay(row, track.time, point)
            self._stranded.discard(track.global_id)
            return self._clear_moved(track)
        stays.last_seen[row], stays.last_point[row] = track.time, point
        if track.global_id not in self._stranded:
            if (stays.last_seen[row] - stays.since[row] < self.config.distress_dwell_s
                    or not self._open_desert(stays.anchor[row])):
                return []
            self._stranded.add(track.global_id)
        return self._raise_or_update(track.global_id, track.time)

    def update_many(self, ids: np.ndarray, times: np.ndarray, east: np.ndarray,
                    north: np.ndarray, classes: np.ndarray,
                    ended: np.ndarray) -> list[AlertEvent]:  # fmt: skip
        """`update` of many tracks (classes as indices into CLASSES): the same events in the
        same order. The radius and dwell tests run on all person tracks at once; only those
        that matter to an alert (stranded, in an alert, or just past the dwell time) go
        through `update`: the others change nothing but their own stay."""
        if _one_at_a_time(ids):
            return [e for view in _views(ids, times, east, north, classes, ended)
                    for e in self.update(view)]  # fmt: skip
        person = np.flatnonzero(classes == _PERSON)
        id_list = ids[person].tolist()
        t, point, end = times[person], np.column_stack([east, north])[person], ended[person]
        stays = self._stays
        row = stays.rows(id_list)
        known = row >= 0
        stays.ended[row[end & known]] = True
        anchor = stays.anchor[row]  # rows of unknown tracks read the last row: masked below
        with np.errstate(invalid="ignore"):
            away = np.hypot(*(point - anchor).T) > self.config.distress_radius_m
        moved = ~end & (~known | away)
        staying = ~end & ~moved
        dwelt = (staying & ~(t - stays.since[row] < self.config.distress_dwell_s)
                 & self._open_desert_many(anchor))  # fmt: skip
        watched = self._stranded.union(*self._alerts.values())
        eventful = ~end & (dwelt | np.array([i in watched for i in id_list], bool))
        for k in np.flatnonzero(moved & ~eventful & ~known).tolist():
            row[k] = stays.add(id_list[k])
        starts = moved & ~eventful
        self._start_stay(row[starts], t[starts], point[starts])
        keep = staying & ~eventful
        stays.last_seen[row[keep]], stays.last_point[row[keep]] = t[keep], point[keep]
        chosen = person[eventful]
        return [e for view in _views(ids[chosen], times[chosen], east[chosen], north[chosen],
                                     classes[chosen], ended[chosen])
                for e in self.update(view)]  # fmt: skip

    def _start_stay(self, row, time, point) -> None:
        """A stay (or many) starting where the track is now."""
        stays = self._stays
        stays.anchor[row], stays.since[row] = point, time
        stays.last_seen[row], stays.last_point[row] = time, point
        stays.ended[row] = False

    def _open_desert(self, point) -> bool:
        return all(np.hypot(*(point - centre)) > radius for centre, radius in self.places)

    def _open_desert_many(self, points: np.ndarray) -> np.ndarray:
        """`_open_desert` of each of (m, 2) points, with the same arithmetic: (m,) bool."""
        east = points[:, :1] - self._centres[:, 0]
        north = points[:, 1:] - self._centres[:, 1]
        with np.errstate(invalid="ignore"):
            return (np.hypot(east, north) > self._radii).all(axis=1)

    def _raise_or_update(self, track_id: int, now: float) -> list[AlertEvent]:
        """Raise, or refresh, the alert of the stranded group this track belongs to."""
        group = self._group_of(track_id, 4 * self.config.distress_radius_m)
        ids = set(group)
        alert_id = next((a for a, tracks in self._alerts.items() if tracks & ids), None)
        change = "updated"
        if alert_id is None:
            # Named by its first track and time, not by a counter: a counter restarts with
            # HQ, and an operator's resolution of an old "distress-1" would hide a new one.
            alert_id, change = f"distress-{min(ids)}-{int(now)}", "raised"
        elif (self._alerts[alert_id] >= ids
              and now - self._refreshed[alert_id] < self.config.distress_update_s):
            return []  # nothing new about this group, and not yet time to refresh
        self._alerts[alert_id] = self._alerts.get(alert_id, set()) | ids
        self._refreshed[alert_id] = now
        return [self._event(alert_id, change, now, group)]

    def _group_of(self, track_id: int, link_m: float) -> dict[int, int]:
        """The stranded tracks within `link_m` of this one, joined transitively: id -> row."""
        stays = self._stays
        group, frontier = {track_id: stays.index[track_id]}, [track_id]
        while frontier:
            anchor = stays.anchor[group[frontier.pop()]]
            for other in self._stranded - group.keys():
                row = stays.index[other]
                if np.hypot(*(stays.anchor[row] - anchor)) <= link_m:
                    group[other] = row
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

    def _event(self, alert_id, change, now, group: dict[int, int]) -> AlertEvent:
        rows = list(group.values())
        centre = np.mean(self._stays.last_point[rows], axis=0)
        lat, lon, _ = self.frame.to_geodetic(centre[0], centre[1], 0.0)
        since = float(self._stays.since[rows].min())
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
