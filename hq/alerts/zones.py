"""Zone entry: a track's step that ends inside a configured zone and began outside it."""

from __future__ import annotations

import numpy as np

from hq.alerts.config import Zone
from hq.alerts.events import AlertEvent
from hq.alerts.geometry import to_enu, zones_entered
from hq.alerts.tracks import TrackView
from wire.geo import EnuFrame


class Zones:
    """The configured zones in HQ's ENU frame, their polygons packed for the kernels: zone
    z's is points[starts[z]:starts[z + 1]]."""

    def __init__(self, frame: EnuFrame, zones: tuple[Zone, ...]):
        self.frame = frame
        self.names = [zone.name for zone in zones]
        polygons = [to_enu(frame, zone.polygon) for zone in zones]
        self.points = np.concatenate(polygons) if polygons else np.empty((0, 2))
        self.starts = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int64)

    def entered(self, before: np.ndarray, after: np.ndarray) -> list[str]:
        """The zones the step before -> after enters, in configured order."""
        flags = zones_entered(before, after, self.points, self.starts)
        return [name for name, entered in zip(self.names, flags.tolist(), strict=True)
                if entered]  # fmt: skip

    def entry_event(self, track: TrackView, zone: str) -> AlertEvent:
        lat, lon, _ = self.frame.to_geodetic(track.east, track.north, 0.0)
        return AlertEvent(
            alert_id=f"zone-{zone}-{track.global_id}-{int(track.time)}", kind="zone_entry",
            change="raised", severity="warning", time=track.time,
            message=f"{track.target_class} track {track.global_id} entered zone {zone}",
            position=(float(lat), float(lon)), track_ids=(track.global_id,),
            details={"zone": zone, "class": track.target_class},
        )  # fmt: skip
