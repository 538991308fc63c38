"""The tracker's state: one contiguous array per track attribute.

Tracks live in the first `n` columns of arrays with spare capacity, so that a
scan touches a few dense arrays instead of one Python object per track.
Deleted tracks are squeezed out in place, keeping the survivors' order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

TENTATIVE = 0
CONFIRMED = 1


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
        self.ids = np.zeros(capacity, np.int64)
        self.status = np.zeros(capacity, np.int8)
        self.t_state = np.zeros(capacity)  # time the state x, P refers to
        self.t_born = np.zeros(capacity)
        self.t_update = np.zeros(capacity)
        self.hits = np.zeros(capacity, np.int64)
        self.misses = np.zeros(capacity, np.int64)
        self.score = np.zeros(capacity)
        self.score_max = np.zeros(capacity)
        self.sensor_mask = np.zeros(capacity, np.int64)

    @property
    def capacity(self) -> int:
        return self.ids.shape[0]

    def columns(self):
        return (
            self.x, self.P, self.ids, self.status, self.t_state, self.t_born,
            self.t_update, self.hits, self.misses, self.score, self.score_max,
            self.sensor_mask,
        )  # fmt: skip

    def reserve(self, extra: int) -> None:
        """Make room for `extra` more tracks."""
        needed = self.n + extra
        if needed <= self.capacity:
            return
        old = self.columns()
        self._allocate(max(needed, 2 * self.capacity))
        for new, values in zip(self.columns(), old, strict=True):
            new[..., : self.n] = values[..., : self.n]

    def compact(self, keep: np.ndarray) -> None:
        """Drop tracks whose keep flag (over the first n) is False."""
        self.n = compact_columns(keep, *self.columns(), self.n)

    def snapshot(self, sensor_names: tuple[str, ...], now: float) -> Tracks:
        ids, x, P, confirmed, hits, misses, age, last_update, score, sensor_mask = _copy_out(
            *self.columns(), self.n, now
        )
        return Tracks(ids, x, P, confirmed, hits, misses, age, last_update, score, sensor_mask,
                      sensor_names)  # fmt: skip


@njit(cache=True)
def _copy_out(x, P, ids, status, t_state, t_born, t_update, hits, misses, score, score_max,
              sensor_mask, n, now):  # fmt: skip
    """The first n tracks as new arrays in the public (track-major) layout."""
    x_out = np.empty((n, 4))
    P_out = np.empty((n, 4, 4))
    for i in range(n):
        for a in range(4):
            x_out[i, a] = x[a, i]
            for b in range(4):
                P_out[i, a, b] = P[a, b, i]
    return (
        ids[:n].copy(), x_out, P_out, status[:n] == CONFIRMED, hits[:n].copy(),
        misses[:n].copy(), now - t_born[:n], t_update[:n].copy(), score[:n].copy(),
        sensor_mask[:n].copy(),
    )  # fmt: skip


@njit(cache=True)
def compact_columns(keep, x, P, ids, status, t_state, t_born, t_update, hits, misses, score,
             score_max, sensor_mask, n):  # fmt: skip
    m = 0
    for i in range(n):
        if not keep[i]:
            continue
        if m != i:
            for a in range(4):
                x[a, m] = x[a, i]
                for b in range(4):
                    P[a, b, m] = P[a, b, i]
            ids[m] = ids[i]
            status[m] = status[i]
            t_state[m] = t_state[i]
            t_born[m] = t_born[i]
            t_update[m] = t_update[i]
            hits[m] = hits[i]
            misses[m] = misses[i]
            score[m] = score[i]
            score_max[m] = score_max[i]
            sensor_mask[m] = sensor_mask[i]
        m += 1
    return m
