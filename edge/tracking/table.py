"""The tracker's state: one contiguous row per track attribute, under a name.

Tracks live in the first `n` columns of arrays with spare capacity, so that a
scan touches a few dense arrays instead of one Python object per track.
Deleted tracks are squeezed out in place, keeping the survivors' order.

The table is four arrays, the layout every kernel shares: `x` (4, capacity) the
state [e, n, ve, vn], `P` (4, 4, capacity) its covariance, and the per-track
scalars as rows of `floats` (float64) and `ints` (int64), named by the row
constants below (`floats[SCORE, i]` is track i's score).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

TENTATIVE = 0
CONFIRMED = 1

# Rows of `floats`.
T_STATE = 0  # time the state x, P refers to
T_BORN = 1
T_UPDATE = 2  # time of the last assigned measurement
SCORE = 3  # log-likelihood ratio, target vs clutter
SCORE_MAX = 4  # the best score since confirmation
E_MEAS = 5  # position (e, n) right after the last assigned measurement
N_MEAS = 6
VAR_MEAS = 7  # its largest variance, m²
N_FLOATS = 8

# Rows of `ints`.
ID = 0  # never reused within a tracker's life
STATUS = 1  # TENTATIVE or CONFIRMED
HITS = 2  # measurements assigned
MISSES = 3  # scans without a measurement
SENSOR_MASK = 4  # bit s set when sensor s fed the track
CLASS = 5  # the class code of `bounds.CLASS_NAMES` (0: unknown)
N_INTS = 6


@dataclass(frozen=True)
class Tracks:
    """A snapshot of the tracker's tracks after one update (copies, safe to keep)."""

    ids: np.ndarray  # (M,) int64, never reused within a tracker's life
    x: np.ndarray  # (M, 4) [e, n, ve, vn] in the node's ENU frame, m and m/s
    P: np.ndarray  # (M, 4, 4)
    confirmed: np.ndarray  # (M,) bool
    hits: np.ndarray  # (M,) int64, measurements assigned
    misses: np.ndarray  # (M,) int64, scans without a measurement
    age: np.ndarray  # (M,) float64 seconds since the track was born
    last_update: np.ndarray  # (M,) float64 time of the last assigned measurement
    score: np.ndarray  # (M,) float64 log-likelihood ratio (target vs clutter)
    sensor_mask: np.ndarray  # (M,) int64, bit s set when sensor s fed the track
    sensor_names: tuple[str, ...]  # bit s of sensor_mask is sensor_names[s]
    # For each measurement of the scan this snapshot follows, in the order given to
    # `update`: the id of the track that used it (-1: none; it may be a track this scan
    # deleted). The association's own answer, for whatever else the node books per track.
    measurement_track: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def sensors(self, k: int) -> list[str]:
        """Names of the sensors that fed the k-th track of this snapshot."""
        mask = int(self.sensor_mask[k])
        return [name for s, name in enumerate(self.sensor_names) if mask >> s & 1]


class TrackTable:
    """Structure-of-arrays storage with amortised growth."""

    def __init__(self, capacity: int = 256):
        self.n = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.x = np.zeros((4, capacity))
        self.P = np.zeros((4, 4, capacity))
        self.floats = np.zeros((N_FLOATS, capacity))
        self.ints = np.zeros((N_INTS, capacity), np.int64)

    @property
    def capacity(self) -> int:
        return self.x.shape[1]

    def columns(self):
        """The table's arrays in the order the kernels take them: x, P, floats, ints."""
        return self.x, self.P, self.floats, self.ints

    def reserve(self, extra: int) -> None:
        """Make room for `extra` more tracks."""
        needed = self.n + extra
        if needed <= self.capacity:
            return
        old = self.columns()
        self._allocate(max(needed, 2 * self.capacity))
        for new, values in zip(self.columns(), old, strict=True):
            new[..., : self.n] = values[..., : self.n]

    def snapshot(self, sensor_names: tuple[str, ...], now: float,
                 measurement_track: np.ndarray) -> Tracks:  # fmt: skip
        ids, x, P, confirmed, hits, misses, age, last_update, score, sensor_mask = _copy_out(
            *self.columns(), self.n, now
        )
        return Tracks(ids, x, P, confirmed, hits, misses, age, last_update, score, sensor_mask,
                      sensor_names, measurement_track)  # fmt: skip


@njit(cache=True)
def _copy_out(x, P, floats, ints, n, now):
    """The first n tracks as new arrays in the public (track-major) layout."""
    x_out = np.empty((n, 4))
    P_out = np.empty((n, 4, 4))
    for i in range(n):
        for a in range(4):
            x_out[i, a] = x[a, i]
            for b in range(4):
                P_out[i, a, b] = P[a, b, i]
    return (
        ints[ID, :n].copy(), x_out, P_out, ints[STATUS, :n] == CONFIRMED,
        ints[HITS, :n].copy(), ints[MISSES, :n].copy(), now - floats[T_BORN, :n],
        floats[T_UPDATE, :n].copy(), floats[SCORE, :n].copy(), ints[SENSOR_MASK, :n].copy(),
    )  # fmt: skip


@njit(cache=True)
def compact_columns(keep, x, P, floats, ints, n):
    """Squeeze out the tracks whose keep flag is False; return how many are left."""
    m = 0
    for i in range(n):
        if not keep[i]:
            continue
        if m != i:
            for a in range(4):
                x[a, m] = x[a, i]
                for b in range(4):
                    P[a, b, m] = P[a, b, i]
            for row in range(N_FLOATS):
                floats[row, m] = floats[row, i]
            for row in range(N_INTS):
                ints[row, m] = ints[row, i]
        m += 1
    return m
