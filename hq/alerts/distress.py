"""Distress (search and rescue): person tracks that stay within a radius for a dwell time,
in open desert (away from posts and settlements).

People stranded together are one alert listing their tracks; it is raised
once, updated while it lasts, and cleared when they move on. A track that is
lost while its alert stands does not clear it: losing sight of stranded
people is no reason to stop looking.
"""

from __future__ import annotations

import numpy as np

from hq.alerts.config import AlertConfig
from hq.alerts.events import AlertEvent
from hq.alerts.geometry import to_enu
from hq.alerts.tracks import PERSON, PerTrack, TrackView, one_at_a_time, views
from wire.geo import EnuFrame


class DistressDetector:
    """People stranded in open desert: raised, updated while they stay, cleared when they
    move on."""

    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.config = config
        self.frame = frame
        self.places = [(to_enu(frame, [(p.lat, p.lon)])[0], p.radius_m) for p in config.places]
        self._centres = np.array([centre for centre, _ in self.places]).reshape(-1, 2)
        self._radii = np.array([radius for _, radius in self.places])
        self._stays = PerTrack({
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
        if one_at_a_time(ids):
            return [e for view in views(ids, times, east, north, classes, ended)
                    for e in self.update(view)]  # fmt: skip
        person = np.flatnonzero(classes == PERSON)
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
        return [e for view in views(ids[chosen], times[chosen], east[chosen], north[chosen],
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
