"""A bounded time series in NumPy arrays, and where a time falls in it.

Each sample is written twice, at slot i and i + capacity of arrays twice the
capacity, so that the newest `capacity` samples always lie in one contiguous
slice, oldest first: reading never copies and never wraps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class PoseUnavailable(LookupError):
    """No pose at the asked time; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Bracket:
    """Samples i and j around a time, the weight of j, and how far beyond the data it is."""

    i: int
    j: int
    weight: float
    beyond: float  # s after the newest sample (negative: before the oldest); 0 inside


class Series:
    """The last `capacity` samples (t, values[width]), t strictly increasing."""

    def __init__(self, capacity: int, width: int):
        if capacity < 2:
            raise ValueError(f"a series holds at least 2 samples, got {capacity}")
        self.capacity = capacity
        self._t = np.zeros(2 * capacity)
        self._v = np.zeros((2 * capacity, width))
        self._written = 0  # samples ever appended since the last clear

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    def clear(self) -> None:
        self._written = 0

    def append(self, t: float, values) -> bool:
        """Add a sample newer than the newest; False (not added) otherwise."""
        if self._written and t <= self._t[self._slot(self._written - 1)]:
            return False
        slot = self._written % self.capacity
        self._t[slot] = self._t[slot + self.capacity] = t
        self._v[slot] = self._v[slot + self.capacity] = values
        self._written += 1
        return True

    def _slot(self, k: int) -> int:
        return k % self.capacity

    @property
    def times(self) -> np.ndarray:
        start = (self._written - len(self)) % self.capacity
        return self._t[start : start + len(self)]

    @property
    def values(self) -> np.ndarray:
        start = (self._written - len(self)) % self.capacity
        return self._v[start : start + len(self)]

    def latest(self) -> tuple[float, np.ndarray] | None:
        if not self._written:
            return None
        slot = self._slot(self._written - 1)
        return float(self._t[slot]), self._v[slot].copy()

    def at_or_before(self, t: float) -> np.ndarray | None:
        """Values of the newest sample not after t."""
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        return None if k < 0 else self.values[k].copy()

    def bracket(self, t: float, horizon: float, max_gap: float, what: str) -> Bracket:
        """The samples to interpolate at t; PoseUnavailable where that would be a guess."""
        times = self.times
        if not len(times):
            raise PoseUnavailable(f"no {what} received yet")
        last = len(times) - 1
        if t >= times[last]:
            return _edge(last, t - times[last], horizon, what, "after the newest")
        if t <= times[0]:
            return _edge(0, t - times[0], horizon, what, "before the oldest")
        j = int(np.searchsorted(times, t, side="left"))
        gap = times[j] - times[j - 1]
        if gap > max_gap:
            raise PoseUnavailable(f"{what}: t falls in a {gap:.1f} s gap (at most {max_gap} s)")
        return Bracket(j - 1, j, float((t - times[j - 1]) / gap), 0.0)


def _edge(k: int, beyond: float, horizon: float, what: str, where: str) -> Bracket:
    if abs(beyond) > horizon:
        raise PoseUnavailable(f"{what}: t is {abs(beyond):.2f} s {where} sample "
                              f"(horizon {horizon} s)")  # fmt: skip
    return Bracket(k, k, 0.0, float(beyond))
