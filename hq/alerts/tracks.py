"""The fused tracks as the detectors see them: one at a time (`TrackView`) or as columns,
and what a detector keeps per track (`PerTrack`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hq.fusion.tables import CLASSES, Slots
from wire.messages import TargetClass

PERSON = CLASSES.index(TargetClass.PERSON)
ANIMAL = CLASSES.index(TargetClass.ANIMAL)


@dataclass(frozen=True)
class TrackView:
    """What alerting needs of a fused track, in HQ's ENU frame."""

    global_id: int
    time: float
    east: float
    north: float
    target_class: str  # person, vehicle, animal, aircraft, unknown
    ended: bool = False


class PerTrack(Slots):
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


def views(ids, times, east, north, classes, ended) -> list[TrackView]:
    names = [str(CLASSES[c]) for c in classes.tolist()]
    return list(map(TrackView, ids.tolist(), times.tolist(), east.tolist(), north.tolist(),
                    names, ended.tolist()))  # fmt: skip


def one_at_a_time(ids: np.ndarray) -> bool:
    """A track twice in one call: its updates depend on each other, so they go in order."""
    return np.unique(ids).size < ids.size
