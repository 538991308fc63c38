"""Border crossings (and, through `Zones`, zone entries) of the fused tracks.

A track's step from its last point to its new one crosses the border polyline
(direction relative to the side of the home post), or enters a configured
zone. Animals never raise one.
"""

from __future__ import annotations

import numpy as np

from hq.alerts.config import AlertConfig
from hq.alerts.events import AlertEvent
from hq.alerts.geometry import border_crossings, paths_alerting, side, to_enu
from hq.alerts.tracks import ANIMAL, PerTrack, TrackView, one_at_a_time, views
from hq.alerts.zones import Zones
from wire.geo import EnuFrame


class CrossingDetector:
    """Border crossings and zone entries of the fused tracks, from each track's last point
    to its new one."""

    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.frame = frame
        self.border = to_enu(frame, config.border)
        self.home = to_enu(frame, [config.home])[0]
        self.zones = Zones(frame, config.zones)
        nowhere = np.zeros((1, 2))  # compiles (or loads) the kernels now, not at a crossing
        paths_alerting(nowhere, nowhere, self.border, self.zones.points, self.zones.starts)
        border_crossings(nowhere[0], nowhere[0], self.border)
        self.zones.entered(nowhere[0], nowhere[0])
        self._last = PerTrack({"time": ((), np.float64, np.nan),
                                "point": ((2,), np.float64, np.nan)})  # fmt: skip

    def update(self, track: TrackView) -> list[AlertEvent]:
        point = np.array([track.east, track.north], dtype=np.float64)
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
        fractions = border_crossings(before, point, self.border)
        for segment in np.flatnonzero(fractions >= 0.0).tolist():
            p, q = self.border[segment], self.border[segment + 1]
            event = self._crossing(track, t0, before, point, float(fractions[segment]), p, q)
            event.details["segment"] = segment
            events.append(event)
        for name in self.zones.entered(before, point):
            events.append(self.zones.entry_event(track, name))
        return events

    def update_many(self, ids: np.ndarray, times: np.ndarray, east: np.ndarray,
                    north: np.ndarray, classes: np.ndarray,
                    ended: np.ndarray) -> list[AlertEvent]:  # fmt: skip
        """`update` of many tracks (classes as indices into CLASSES): the same events in the
        same order. The crossing and zone tests run on all rows at once; only the rows that
        cross or enter something go through `update`, the others just keep their point."""
        if one_at_a_time(ids):
            return [e for view in views(ids, times, east, north, classes, ended)
                    for e in self.update(view)]  # fmt: skip
        last, id_list = self._last, ids.tolist()
        row = last.rows(id_list)
        seen = row >= 0
        point = np.column_stack([east, north])
        watched = np.flatnonzero(seen & (classes != ANIMAL))
        eventful = np.zeros(ids.size, bool)
        eventful[watched] = paths_alerting(last.point[row[watched]], point[watched],
                                           self.border, self.zones.points, self.zones.starts)
        quiet = ~eventful
        for k in np.flatnonzero(quiet & ended & seen).tolist():
            last.remove(id_list[k])
        for k in np.flatnonzero(quiet & ~ended & ~seen).tolist():
            row[k] = last.add(id_list[k])
        keep = quiet & ~ended
        last.time[row[keep]], last.point[row[keep]] = times[keep], point[keep]
        chosen = np.flatnonzero(eventful)
        return [e for view in views(ids[chosen], times[chosen], east[chosen], north[chosen],
                                     classes[chosen], ended[chosen])
                for e in self.update(view)]  # fmt: skip

    def _crossing(self, track, t0, before, point, fraction, p, q) -> AlertEvent:
        at = before + fraction * (point - before)
        when = t0 + fraction * (track.time - t0)
        inbound = side(p, q, point) * side(p, q, self.home) > 0
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
