"""Distress (search and rescue): people stationary in open desert (away from posts and
settlements) for the dwell time, counted from when they stopped.

Only where detections put a track counts (as for crossings: each state traced
back to its newest detection): a prediction neither moves nor stops a track.
Each track keeps a stay (where it came within `distress_radius_m` of where it
is: beyond that it has moved on) and, inside it, its stop: the point it last
moved to, and since when it has kept within `distress_stop_radius_m` of it.
The dwell counts from that time, not from when it came near.

Two alerts, by what was seen:
- a track seen to move and then stop, believed a person at least
  `distress_person_confidence`: "possible distress", critical;
- a track found stationary (it never moved while seen): "possible stranded
  people, verify", a warning, and only if believed a person at least
  `distress_verify_confidence`. A warm rock never moves either; classed with
  a low confidence, it never raises distress.
A track that appears where another one had stopped (the sensors lost it and
found it again under a new id) takes over that one's stop.

People stranded together are one alert listing their tracks and how many people
they are (a track may stand for a group: its `count`); it is raised once,
updated while it lasts, and cleared when they move on. A track that is lost
while its alert stands does not clear it: losing sight of stranded people is no
reason to stop looking.
"""

from __future__ import annotations

import numpy as np

from hq.alerts.config import AlertConfig
from hq.alerts.events import AlertEvent
from hq.alerts.geography import StaticGeography, StoreGeography
from hq.alerts.tracks import PERSON, PerTrack, TrackColumns, TrackView
from wire.geo import EnuFrame


class DistressDetector:
    """People stranded in open desert: raised, updated while they stay, cleared when they
    move on."""

    def __init__(self, config: AlertConfig, frame: EnuFrame,
                 geography: StaticGeography | StoreGeography | None = None):  # fmt: skip
        self.config = config
        self.frame = frame
        self.geography = geography if geography is not None else StaticGeography(config, frame)
        self._stays = PerTrack({
            "anchor": ((2,), np.float64, np.nan),  # where the stay began
            "stop": ((2,), np.float64, np.nan),  # where the track last moved to
            "stopped_since": ((), np.float64, np.nan),
            "moved": ((), np.bool_, False),  # seen to move since it was first seen
            "last_seen": ((), np.float64, np.nan),
            "last_point": ((2,), np.float64, np.nan),  # where it is now
            "count": ((), np.int64, 1),
            "ended": ((), np.bool_, False),
            "track_id": ((), np.int64, -1),
        })  # fmt: skip
        self._alerts: dict[str, set[int]] = {}  # alert id -> the tracks it is about
        self._refreshed: dict[str, float] = {}  # alert id -> time of its last event
        self._stranded: set[int] = set()  # tracks past the dwell time in open desert

    def update(self, track: TrackView) -> list[AlertEvent]:
        return self.update_many(TrackColumns.of([track]))

    def update_many(self, tracks: TrackColumns) -> list[AlertEvent]:
        """The events of a call's tracks, as if they came one at a time in the order of
        their rows. The radius and dwell tests run on all rows at once; the rows that may
        matter to an alert (a new track, one stranded, in an alert, or past the dwell time)
        then go one by one: the others change nothing but their own stay."""
        events = []
        for part in tracks.in_order():
            row = self._stays.rows(part.ids.tolist())
            eventful = self._eventful(part, row)
            if not eventful.any():
                events += self._update(part, row)
            elif len(part) > 1 and not eventful.all():
                quiet = ~eventful
                self._update(part.take(quiet), row[quiet])
                for k in np.flatnonzero(eventful).tolist():
                    events += self._update(part.take(slice(k, k + 1)))
            else:
                events += self._update(part)
        return events

    def _moves(self, tracks: TrackColumns, row: np.ndarray) -> tuple[np.ndarray, ...]:
        """(measured, away, stepped) of each row against its track's stay: a measured
        position, beyond the stay's radius, beyond the stop's radius."""
        config, stays = self.config, self._stays
        known = row >= 0
        measured = tracks.detected(config.trace_back_s)
        point = tracks.at_detection
        with np.errstate(invalid="ignore"):
            away = measured & known & (np.hypot(*(point - stays.anchor[row]).T)
                                       > config.distress_radius_m)  # fmt: skip
            stepped = measured & known & (np.hypot(*(point - stays.stop[row]).T)
                                          > config.distress_stop_radius_m)  # fmt: skip
        return measured, away, stepped

    def _dwelt(self, tracks: TrackColumns, row: np.ndarray, which: np.ndarray) -> np.ndarray:
        """Whether the tracks at `row` (their stays as they stand), seen in the rows `which`,
        are past the dwell time, in open desert, and a person as sure as what was seen asks."""
        config, stays = self.config, self._stays
        sure = np.where(stays.moved[row], config.distress_person_confidence,
                        config.distress_verify_confidence)  # fmt: skip
        return ((tracks.measured[which] - stays.stopped_since[row] >= config.distress_dwell_s)
                & (tracks.class_p[which, PERSON] >= sure)
                & self.geography.current.open_desert(stays.stop[row]))  # fmt: skip

    def _eventful(self, tracks: TrackColumns, row: np.ndarray) -> np.ndarray:
        """The rows that may make an event or read another track's stay (`row`: each
        track's stay, -1 for none yet)."""
        measured, _, stepped = self._moves(tracks, row)
        watched = self._stranded.union(*self._alerts.values())
        eventful = np.array([i in watched for i in tracks.ids.tolist()], bool)
        new = np.flatnonzero(measured & (row < 0))
        if new.size:
            lost = self._lost_stays(float(tracks.measured[new].min()))
            points = tracks.at_detection
            eventful[new] = [self._found_again(float(tracks.measured[k]), points[k], lost) >= 0
                             for k in new.tolist()]  # fmt: skip
        still = np.flatnonzero(measured & (row >= 0) & ~stepped)
        eventful[still] |= self._dwelt(tracks, row[still], still)
        return eventful

    def _update(self, tracks: TrackColumns, row: np.ndarray | None = None) -> list[AlertEvent]:
        stays = self._stays
        id_list = tracks.ids.tolist()
        row = stays.rows(id_list) if row is None else row.copy()
        known = row >= 0
        stays.ended[row[tracks.ended & known]] = True
        point, t = tracks.at_detection, tracks.measured  # where and when detected
        measured, away, stepped = self._moves(tracks, row)
        new = np.flatnonzero(measured & ~known)
        lost = self._lost_stays(float(t[new].min())) if new.size else None
        for k in new.tolist():
            row[k] = self._start(id_list[k], float(t[k]), point[k], lost)
        moved_on = [id_list[k] for k in np.flatnonzero(away).tolist()]
        events = [e for k in np.flatnonzero(away).tolist()
                  for e in self._clear_moved(id_list[k], float(t[k]))]  # fmt: skip
        self._stranded.difference_update(moved_on)
        stays.anchor[row[away]] = point[away]
        rows = row[stepped]
        stays.stop[rows], stays.stopped_since[rows] = point[stepped], t[stepped]
        stays.moved[rows] = True
        rows = row[measured]
        stays.last_seen[rows], stays.last_point[rows] = t[measured], point[measured]
        stays.count[rows] = tracks.count[measured]
        which = np.flatnonzero(measured)
        dwelt = self._dwelt(tracks, row[which], which)
        watched = self._stranded.union(*self._alerts.values())
        for k, is_dwelt in zip(which.tolist(), dwelt.tolist(), strict=True):
            if is_dwelt:
                self._stranded.add(id_list[k])
            if is_dwelt or id_list[k] in watched:
                events += self._raise_or_update(id_list[k], float(t[k]))
        if tracks.ended.any():
            self._forget_ended(float(t.max()))
        return events

    def _forget_ended(self, now: float) -> None:
        """Stays of tracks ended longer ago than a new id could take them over, unless an
        alert stands on them."""
        stays = self._stays
        used = stays.used
        with np.errstate(invalid="ignore"):
            old = stays.ended[:used] & (stays.last_seen[:used] < now - self.config.distress_dwell_s)
        watched = self._stranded.union(*self._alerts.values())
        for track_id in stays.track_id[:used][old].tolist():
            if track_id not in watched and track_id in stays.index:
                stays.remove(track_id)

    def _start(self, track_id: int, time: float, point: np.ndarray, lost: np.ndarray) -> int:
        """A new track's stay. Where a track lost lately had stopped, it is that one again
        (found under a new id): it takes over its stop, and whether it was seen to move."""
        stays = self._stays
        earlier = self._found_again(time, point, lost)
        row = stays.add(track_id)
        stays.track_id[row] = track_id
        stays.anchor[row] = stays.stop[row] = stays.last_point[row] = point
        stays.stopped_since[row] = stays.last_seen[row] = time
        stays.moved[row] = False
        if earlier >= 0:
            stays.stopped_since[row] = stays.stopped_since[earlier]
            stays.moved[row] = stays.moved[earlier]
            stays.stop[row] = stays.stop[earlier]
        return row

    def _lost_stays(self, time: float) -> np.ndarray:
        """Rows of the stays of tracks lost lately: not measured for a while before `time`,
        but within the dwell time (a few, where tracks are followed)."""
        stays, config = self._stays, self.config
        seen = stays.last_seen[: stays.used]
        with np.errstate(invalid="ignore"):
            return np.flatnonzero((seen < time - config.measured_within_s)
                                  & (seen >= time - config.distress_dwell_s))  # fmt: skip

    def _found_again(self, time: float, point: np.ndarray, lost: np.ndarray) -> int:
        """The stay (one of the `lost`) of the track a new one at `point` is most likely to
        be, found again: the one stopped longest within the stop radius of it; -1: none."""
        stays, config = self._stays, self.config
        lost = lost[stays.last_seen[lost] < time - config.measured_within_s]
        with np.errstate(invalid="ignore"):
            near = lost[np.hypot(*(stays.stop[lost] - point).T)
                        <= config.distress_stop_radius_m]  # fmt: skip
        return int(near[np.argmin(stays.stopped_since[near])]) if near.size else -1

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
        elif (
            self._alerts[alert_id] >= ids
            and now - self._refreshed[alert_id] < self.config.distress_update_s
        ):
            return []  # nothing new about this group, and not yet time to refresh
        self._alerts[alert_id] = self._alerts.get(alert_id, set()) | ids
        self._refreshed[alert_id] = now
        return [self._event(alert_id, change, now, group)]

    def _group_of(self, track_id: int, link_m: float) -> dict[int, int]:
        """The stranded tracks within `link_m` of this one, joined transitively: id -> row."""
        stays = self._stays
        group, frontier = {track_id: stays.index[track_id]}, [track_id]
        while frontier:
            stop = stays.stop[group[frontier.pop()]]
            for other in self._stranded - group.keys():
                row = stays.index[other]
                if np.hypot(*(stays.stop[row] - stop)) <= link_m:
                    group[other] = row
                    frontier.append(other)
        return group

    def _clear_moved(self, track_id: int, time: float) -> list[AlertEvent]:
        events = []
        for alert_id, ids in list(self._alerts.items()):
            if track_id not in ids:
                continue
            ids.discard(track_id)
            if not ids:
                del self._alerts[alert_id], self._refreshed[alert_id]
                events.append(AlertEvent(alert_id, "distress", "cleared", "info", time,
                                         f"the people of {alert_id} are moving again",
                                         track_ids=(track_id,)))  # fmt: skip
        return events

    def _event(self, alert_id, change, now, group: dict[int, int]) -> AlertEvent:
        stays = self._stays
        rows = list(group.values())
        centre = np.mean(stays.last_point[rows], axis=0)
        lat, lon, _ = self.frame.to_geodetic(centre[0], centre[1], 0.0)
        since = float(stays.stopped_since[rows].min())
        people = int(stays.count[rows].sum())
        minutes = (now - since) / 60
        seen_stopping = bool(stays.moved[rows].any())
        if seen_stopping:
            severity = "critical"
            message = (
                f"{people} {'person' if people == 1 else 'people'} stationary in open "
                f"desert for {minutes:.0f} min: possible distress"
            )
        else:
            severity = "warning"
            message = (
                f"possible stranded people, verify: {people} found stationary in open "
                f"desert, for {minutes:.0f} min at least"
            )
        return AlertEvent(
            alert_id=alert_id, kind="distress", change=change, severity=severity, time=now,
            message=message, position=(float(lat), float(lon)), track_ids=tuple(sorted(group)),
            details={"since": since, "people": people, "count": people,
                     "seen_stopping": seen_stopping},
        )  # fmt: skip
