"""Where the detectors look: the border line, the zones and the places, in HQ's ENU frame,
always the current version.

The Store holds them (seeded from hq.toml on the first start) and the API changes them,
each change committed with its audit row. `StoreGeography.refresh` (ingest calls it once
per cycle, before the detectors) asks the store whether its audit log grew since the last
look, one small query, and reads the border, zones and places again when it did: a zone an
admin draws alerts from the next batch on, on every HQ process sharing the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hq.alerts.config import AlertConfig, LatLon, Place, Zone
from hq.alerts.geometry import (
    crossing_counts,
    distances_to_line,
    entering_any_zone,
    last_crossing,
    to_enu,
    zones_entered,
)
from hq.store.interface import Store
from wire.geo import EnuFrame

log = logging.getLogger(__name__)
_AUDIT_PAGE = 1000


@dataclass(frozen=True, eq=False)
class Geography:
    """One version of the border, zones and places in HQ's ENU frame, packed for the kernels:
    zone z's polygon is zone_points[zone_starts[z]:zone_starts[z + 1]]."""

    border: np.ndarray  # (n, 2); fewer than 2 points: no border line
    home: np.ndarray  # (2,) a point on the side HQ guards
    zone_names: tuple[str, ...]
    zone_points: np.ndarray  # (m, 2)
    zone_starts: np.ndarray  # (zones + 1,) int64
    place_centres: np.ndarray  # (p, 2)
    place_radii: np.ndarray  # (p,)

    @classmethod
    def of(cls, frame: EnuFrame, border: Sequence[LatLon], home: LatLon,
           zones: Sequence[Zone], places: Sequence[Place]) -> Geography:  # fmt: skip
        polygons = [to_enu(frame, zone.polygon) for zone in zones]
        return cls(
            border=to_enu(frame, border) if len(border) else np.empty((0, 2)),
            home=to_enu(frame, [home])[0], zone_names=tuple(zone.name for zone in zones),
            zone_points=np.concatenate(polygons) if polygons else np.empty((0, 2)),
            zone_starts=np.cumsum([0] + [len(p) for p in polygons]).astype(np.int64),
            place_centres=to_enu(frame, [(p.lat, p.lon) for p in places]).reshape(-1, 2),
            place_radii=np.array([p.radius_m for p in places], np.float64),
        )  # fmt: skip

    @property
    def has_border(self) -> bool:
        return self.border.shape[0] >= 2

    def zones_entered(self, before: np.ndarray, after: np.ndarray) -> list[str]:
        """The zones the step before -> after enters, in their order."""
        flags = zones_entered(before, after, self.zone_points, self.zone_starts)
        return [name for name, entered in zip(self.zone_names, flags.tolist(), strict=True)
                if entered]  # fmt: skip

    def open_desert(self, points: np.ndarray) -> np.ndarray:
        """Whether each of (m, 2) points is beyond every place's radius: (m,) bool."""
        east = points[:, :1] - self.place_centres[:, 0]
        north = points[:, 1:] - self.place_centres[:, 1]
        with np.errstate(invalid="ignore"):
            return (np.hypot(east, north) > self.place_radii).all(axis=1)


class StaticGeography:
    """The geography of a config, never changing (tests, tools without a store)."""

    def __init__(self, config: AlertConfig, frame: EnuFrame):
        self.current = Geography.of(frame, config.border, config.home, config.zones,
                                    config.places)  # fmt: skip
        self.version = 0

    def refresh(self) -> bool:
        return False


class StoreGeography:
    """The Store's geography, read again whenever its audit log grew (every change to the
    border, a zone or a place is an audited operator action)."""

    def __init__(self, store: Store, frame: EnuFrame, home: LatLon):
        self.store = store
        self.frame = frame
        self.home = home
        self.version = 0  # how many times it was read
        self._audit_seq = 0
        self._skip_to_audit_end()
        self.current = self._read()

    def refresh(self) -> bool:
        """Read the geography again if an operator action was committed since the last
        look; whether it was. A store that fails to answer keeps the version in hand."""
        try:
            newer = self.store.audit_log(after_seq=self._audit_seq, limit=1)
            if not newer:
                return False
            self._skip_to_audit_end()
            self.current = self._read()
        except Exception:  # the next cycle asks again; alerting goes on with what it has
            log.exception("geography not read from the store")
            return False
        log.info("geography read again version=%d zones=%d", self.version,
                 len(self.current.zone_names))  # fmt: skip
        return True

    def _skip_to_audit_end(self) -> None:
        while entries := self.store.audit_log(after_seq=self._audit_seq, limit=_AUDIT_PAGE):
            self._audit_seq = entries[-1].seq

    def _read(self) -> Geography:
        store = self.store
        border = store.border()
        zones = [Zone(area.name, tuple(area.points)) for area in store.zones()]
        places = [Place(p.name, p.lat, p.lon, p.radius_m) for p in store.places()]
        self.version += 1
        return Geography.of(self.frame, border.points if border is not None else (),
                            self.home, zones, places)  # fmt: skip


def warm_kernels() -> None:
    """Compile (or load from the cache) the geometry kernels now, not at a crossing."""
    nowhere, line = np.zeros((1, 2)), np.array([[0.0, 0.0], [1.0, 0.0]])
    starts = np.zeros(1, np.int64)
    distances_to_line(nowhere, line)
    crossing_counts(nowhere, nowhere, line)
    last_crossing(nowhere[0], nowhere[0], line)
    entering_any_zone(nowhere, nowhere, np.empty((0, 2)), starts)
    zones_entered(nowhere[0], nowhere[0], np.empty((0, 2)), starts)
