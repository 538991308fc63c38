"""The fused tracks as the detectors see them: many at once (`TrackColumns`) or one
(`TrackView`), and what a detector keeps per track (`PerTrack`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from hq.fusion.tables import CLASSES, UNKNOWN_CLASS, Slots
from wire.messages import TargetClass

PERSON = CLASSES.index(TargetClass.PERSON)
VEHICLE = CLASSES.index(TargetClass.VEHICLE)
ANIMAL = CLASSES.index(TargetClass.ANIMAL)
AIRCRAFT = CLASSES.index(TargetClass.AIRCRAFT)


@dataclass(frozen=True)
class TrackView:
    """What alerting needs of one fused track, in HQ's ENU frame."""

    global_id: int
    time: float
    east: float
    north: float
    target_class: str  # person, vehicle, animal, aircraft, unknown
    ended: bool = False
    # The fused belief in each class; None: all of it on target_class.
    class_probabilities: dict[str, float] | None = None
    count: int = 1  # objects the track stands for (a group the sensors cannot resolve)
    measured: float | None = None  # UTC s of the newest detection in it; None: `time`
    velocity: tuple[float, float] = (0.0, 0.0)  # east, north m/s


@dataclass(frozen=True, eq=False)
class TrackColumns:
    """Many fused tracks, a row each, in HQ's ENU frame (what ingest hands the detectors)."""

    ids: np.ndarray  # (n,) int64 global ids
    times: np.ndarray  # (n,) UTC s of each state
    east: np.ndarray  # (n,) m
    north: np.ndarray
    class_p: np.ndarray  # (n, len(CLASSES)) belief in each class
    ended: np.ndarray  # (n,) bool
    count: np.ndarray = field(default=None)  # (n,) int64; None: 1 each
    measured: np.ndarray = field(default=None)  # (n,) UTC s of the newest detection; None: times
    ve: np.ndarray = field(default=None)  # (n,) m/s; None: 0
    vn: np.ndarray = field(default=None)

    def __post_init__(self):
        n = self.ids.shape[0]
        if self.count is None:
            object.__setattr__(self, "count", np.ones(n, np.int64))
        if self.measured is None:
            object.__setattr__(self, "measured", self.times.astype(np.float64))
        for name in ("ve", "vn"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(n))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def of(cls, views: list[TrackView]) -> TrackColumns:
        class_p = np.zeros((len(views), len(CLASSES)))
        for k, view in enumerate(views):
            beliefs = view.class_probabilities or {view.target_class: 1.0}
            for name, p in beliefs.items():
                class_p[k, CLASSES.index(TargetClass(name))] = p
        return cls(
            ids=np.array([v.global_id for v in views], np.int64),
            times=np.array([v.time for v in views], np.float64),
            east=np.array([v.east for v in views], np.float64),
            north=np.array([v.north for v in views], np.float64),
            class_p=class_p, ended=np.array([v.ended for v in views], bool),
            count=np.array([v.count for v in views], np.int64),
            measured=np.array([v.time if v.measured is None else v.measured for v in views],
                              np.float64),
            ve=np.array([v.velocity[0] for v in views], np.float64),
            vn=np.array([v.velocity[1] for v in views], np.float64),
        )  # fmt: skip

    def take(self, which) -> TrackColumns:
        return TrackColumns(self.ids[which], self.times[which], self.east[which],
                            self.north[which], self.class_p[which], self.ended[which],
                            self.count[which], self.measured[which], self.ve[which],
                            self.vn[which])  # fmt: skip

    def points(self) -> np.ndarray:
        return np.column_stack([self.east, self.north])

    def detected(self, max_age_s: float) -> np.ndarray:
        """The rows whose newest detection is at most `max_age_s` older than their state
        (those whose `at_detection` points are used at all)."""
        with np.errstate(invalid="ignore"):
            return ~self.ended & (self.times - self.measured <= max_age_s)

    @cached_property
    def at_detection(self) -> np.ndarray:
        """Where each row's newest detection put the track (n, 2): its state traced back
        along its velocity to the detection's time. A tracker coasting from a detection
        moves its state at a constant velocity, so this undoes its prediction exactly; a
        coasting track's wrong velocity carries its prediction across the border, never
        this point. A row never detected keeps its state."""
        age = np.where(np.isfinite(self.measured), self.times - self.measured, 0.0)
        return _read_only(np.column_stack([self.east - self.ve * age, self.north - self.vn * age]))

    @cached_property
    def chosen(self) -> np.ndarray:
        """Each row's class with the most belief, unknown where no other is believed at all."""
        known = self.class_p.copy()
        known[:, UNKNOWN_CLASS] = 0.0
        return _read_only(np.where(known.any(axis=1), np.argmax(known, axis=1), UNKNOWN_CLASS))

    def in_order(self) -> list[TrackColumns]:
        """The rows as calls that hold each track at most once, in order: a track twice in
        one call has updates that depend on each other."""
        if np.unique(self.ids).size == self.ids.size:
            return [self]
        return [self.take(slice(k, k + 1)) for k in range(len(self))]


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


def class_name(index: int) -> str:
    return str(CLASSES[index])


def _read_only(array: np.ndarray) -> np.ndarray:
    """A column computed once per call and shared by every detector: nobody writes to it."""
    array.setflags(write=False)
    return array
