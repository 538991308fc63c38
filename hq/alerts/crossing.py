"""Border crossings (and, through the geography's zones, zone entries) of the fused tracks.

A crossing is what the track's own detections show, not what a filter predicts:
each state counts as where its newest detection put the track (traced back along
its velocity, `TrackColumns.at_detection`; at most `trace_back_s` back), so a
coasting track with a wrong velocity never crosses; and only positions at least
`crossing_margin_m` from the line count (a track jittering on it never crosses).
Each track keeps its last such position (its anchor); one beyond the margin
whose step from the anchor crosses the line an odd number of times is a
crossing, at the point and time where the step meets the line. A
track alerted is not alerted again, either way, for `crossing_hold_s`.

The class decides what a crossing raises: nothing for an animal, or for a track
believed an animal at least `animal_probability` (camels cross where people do);
a warning for a person, vehicle or aircraft believed at least `class_confidence`.
A young track's class is a guess (a node needs a few detections to tell a pickup
from a camel): a crossing is alerted at once only if the track has been
confidently its class for `crossing_class_wait_s` already; otherwise it waits
until it has, or until that long after the crossing (or the track's end), and
the class then decides: an animal raises nothing, an unknown class what
`unknown_crossings` says (a warning, an info, or nothing). A track that crosses
back meanwhile raises nothing. A zone entry is the
step between two measured positions that ends inside a zone and began outside
it, with the same classes, decided at once.
"""

from __future__ import annotations

import numpy as np

from hq.alerts.config import AlertConfig
from hq.alerts.events import AlertEvent
from hq.alerts.geography import StaticGeography, StoreGeography, warm_kernels
from hq.alerts.geometry import (
    crossing_counts,
    distances_to_line,
    entering_any_zone,
    last_crossing,
    side,
)
from hq.alerts.tracks import ANIMAL, PerTrack, TrackColumns, TrackView, class_name
from hq.fusion.tables import UNKNOWN_CLASS
from wire.geo import EnuFrame

ANIMAL_LIKE, UNKNOWN, KNOWN = -1, 0, 1  # what a row's class is, for crossings


class CrossingDetector:
    """Border crossings and zone entries of the fused tracks, from their measured positions."""

    def __init__(self, config: AlertConfig, frame: EnuFrame,
                 geography: StaticGeography | StoreGeography | None = None):  # fmt: skip
        self.config = config
        self.frame = frame
        self.geography = geography if geography is not None else StaticGeography(config, frame)
        warm_kernels()
        self._tracks = PerTrack({
            # The last measured position at least the margin from the border, and its time.
            "anchor": ((2,), np.float64, np.nan),
            "anchor_time": ((), np.float64, np.nan),
            "last": ((2,), np.float64, np.nan),  # the last measured position (zones)
            "alerted_at": ((), np.float64, -np.inf),  # its last crossing alert
            # A crossing waiting for the track's class: when, where, which segment, which way.
            "pending_time": ((), np.float64, np.nan),
            "pending_at": ((2,), np.float64, np.nan),
            "pending_segment": ((), np.int64, -1),
            "pending_inbound": ((), np.bool_, False),
            # The class the track has been confidently, and since when.
            "known_class": ((), np.int64, -1),
            "known_since": ((), np.float64, np.nan),
        })  # fmt: skip

    @property
    def border(self) -> np.ndarray:
        return self.geography.current.border

    def update(self, track: TrackView) -> list[AlertEvent]:
        return self.update_many(TrackColumns.of([track]))

    def update_many(self, tracks: TrackColumns) -> list[AlertEvent]:
        """The events of a call's tracks, in the order of their rows. The geometric tests run
        on all rows at once; only rows that cross, enter or settle something make events."""
        return [e for part in tracks.in_order() for e in self._update(part)]

    def _update(self, tracks: TrackColumns) -> list[AlertEvent]:
        config, geography, state = self.config, self.geography.current, self._tracks
        row = state.rows(tracks.ids.tolist())
        seen = row >= 0
        point = tracks.at_detection
        measured = tracks.detected(config.trace_back_s)
        settled = measured.copy()
        if geography.has_border:
            settled &= distances_to_line(point, geography.border) >= config.crossing_margin_m
        category = self._category(tracks)
        # Crossings: the step from the anchor to a settled position.
        anchor = state.anchor[row]
        crossing = seen & settled & np.isfinite(anchor[:, 0])
        if geography.has_border and crossing.any():
            where = np.flatnonzero(crossing)
            crossing[where] = (
                crossing_counts(anchor[where], point[where], geography.border) % 2 == 1
            )
        else:
            crossing[:] = False
        last = state.last[row]
        entering = seen & measured & np.isfinite(last[:, 0]) & (category != ANIMAL_LIKE)
        if geography.zone_names and entering.any():
            where = np.flatnonzero(entering)
            entering[where] = entering_any_zone(last[where], point[where], geography.zone_points,
                                                geography.zone_starts)  # fmt: skip
        else:
            entering[:] = False
        waiting = seen & np.isfinite(state.pending_time[row]) & ~crossing
        known_since = self._known_since(tracks, row, seen, category)
        sure = (category == KNOWN) & (tracks.times - known_since >= config.crossing_class_wait_s)
        events = []
        for k in np.flatnonzero(crossing | entering | waiting).tolist():
            if waiting[k]:
                events += self._settle(tracks, k, row[k], category[k], sure[k])
            if crossing[k]:
                events += self._crossing(tracks, k, row[k], category[k], sure[k])
            if entering[k]:
                events += self._zone_entries(tracks, k, row[k], category[k])
        self._keep(tracks, row, seen, point, measured, settled)
        state.known_class[row[~tracks.ended]] = np.where(category == KNOWN, tracks.chosen,
                                                         -1)[~tracks.ended]  # fmt: skip
        state.known_since[row[~tracks.ended]] = known_since[~tracks.ended]
        return events

    def _known_since(self, tracks, row, seen, category) -> np.ndarray:
        """Since when each row's track has been confidently its class now (NaN: it is not)."""
        state = self._tracks
        same = seen & (category == KNOWN) & (state.known_class[row] == tracks.chosen)
        since = np.where(same, state.known_since[row], tracks.times)
        return np.where(category == KNOWN, since, np.nan)

    def _category(self, tracks: TrackColumns) -> np.ndarray:
        """Each row's class for crossings: ANIMAL_LIKE (raises nothing), KNOWN or UNKNOWN."""
        config, p = self.config, tracks.class_p
        chosen = tracks.chosen
        confident = p[np.arange(len(tracks)), chosen] >= config.class_confidence
        category = np.where(confident & (chosen != UNKNOWN_CLASS), KNOWN, UNKNOWN)
        animal = (chosen == ANIMAL) | (p[:, ANIMAL] >= config.animal_probability)
        return np.where(animal, ANIMAL_LIKE, category)

    def _severity(self, category: int) -> str | None:
        """The severity of an alert about a track of this category; None: no alert."""
        if category == UNKNOWN:
            return {"alert": "warning", "lower": "info", "ignore": None}[
                self.config.unknown_crossings
            ]
        return "warning" if category == KNOWN else None

    def _keep(self, tracks, row, seen, point, measured, settled) -> None:
        """Each track's anchor and last measured position; ended tracks forgotten."""
        state, id_list = self._tracks, tracks.ids.tolist()
        for k in np.flatnonzero(tracks.ended & seen).tolist():
            state.remove(id_list[k])
        for k in np.flatnonzero(~tracks.ended & ~seen).tolist():
            row[k] = state.add(id_list[k])
        state.anchor[row[settled]], state.anchor_time[row[settled]] = (
            point[settled],
            tracks.measured[settled],
        )
        state.last[row[measured]] = point[measured]

    def _crossing(self, tracks: TrackColumns, k: int, row: int, category: int,
                  sure: bool) -> list[AlertEvent]:  # fmt: skip
        """A crossing of row k's track: alerted, waiting for its class, or nothing. `sure`:
        the track has been confidently its class for the wait already."""
        state, geography = self._tracks, self.geography.current
        before, point = state.anchor[row].copy(), tracks.at_detection[k]
        t0, t1 = float(state.anchor_time[row]), float(tracks.measured[k])
        _, segment, fraction = last_crossing(before, point, geography.border)
        when = t0 + fraction * (t1 - t0)
        if np.isfinite(state.pending_time[row]):  # back across before its class was sure
            state.pending_time[row] = np.nan
            return []
        if when - state.alerted_at[row] < self.config.crossing_hold_s:
            return []
        p, q = geography.border[segment], geography.border[segment + 1]
        state.pending_time[row], state.pending_at[row] = when, before + fraction * (point - before)
        state.pending_segment[row] = segment
        state.pending_inbound[row] = side(p, q, point) * side(p, q, geography.home) > 0
        return self._settle(tracks, k, row, category, sure)

    def _settle(self, tracks: TrackColumns, k: int, row: int, category: int,
                sure: bool) -> list[AlertEvent]:  # fmt: skip
        """The track's waiting crossing: alerted once the track has been confidently a
        person, vehicle or aircraft for the wait (`sure`); at the end of the wait after the
        crossing (or when the track ends), decided by the class it has then."""
        state, config = self._tracks, self.config
        when = float(state.pending_time[row])
        waited = tracks.ended[k] or tracks.times[k] - when >= config.crossing_class_wait_s
        if not (sure or waited):
            return []
        state.pending_time[row] = np.nan
        severity = self._severity(category)
        if severity is None:
            return []
        state.alerted_at[row] = when
        at = state.pending_at[row]
        lat, lon, _ = self.frame.to_geodetic(at[0], at[1], 0.0)
        direction = "inbound" if state.pending_inbound[row] else "outbound"
        target_class, count, gid = self._described(tracks, k)
        what = target_class if count == 1 else f"group of {count} ({target_class})"
        return [AlertEvent(
            alert_id=f"crossing-{gid}-{int(when)}", kind="border_crossing",
            change="raised", severity=severity, time=when,
            message=f"{what} track {gid} crossed the border {direction}",
            position=(float(lat), float(lon)), track_ids=(gid,),
            details={"direction": direction, "class": target_class, "count": count,
                     "segment": int(state.pending_segment[row])},
        )]  # fmt: skip

    def _zone_entries(self, tracks: TrackColumns, k: int, row: int,
                      category: int) -> list[AlertEvent]:  # fmt: skip
        severity = self._severity(category)
        if severity is None:
            return []
        geography = self.geography.current
        before, point = self._tracks.last[row].copy(), tracks.at_detection[k]
        target_class, count, gid = self._described(tracks, k)
        time = float(tracks.measured[k])
        lat, lon, _ = self.frame.to_geodetic(point[0], point[1], 0.0)
        return [AlertEvent(
            alert_id=f"zone-{zone}-{gid}-{int(time)}", kind="zone_entry", change="raised",
            severity=severity, time=time,
            message=f"{target_class} track {gid} entered zone {zone}",
            position=(float(lat), float(lon)), track_ids=(gid,),
            details={"zone": zone, "class": target_class, "count": count},
        ) for zone in geography.zones_entered(before, point)]  # fmt: skip

    def _described(self, tracks: TrackColumns, k: int) -> tuple[str, int, int]:
        """(class named in the alert, count, global id) of row k; the class "unknown" where
        not believed enough."""
        chosen = int(tracks.chosen[k])
        if tracks.class_p[k, chosen] < self.config.class_confidence:
            chosen = UNKNOWN_CLASS
        return class_name(chosen), int(tracks.count[k]), int(tracks.ids[k])
