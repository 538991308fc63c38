"""A clutter map on the ground: where detections keep coming without anything moving.

A warm rock, a patch of scrub or a vehicle's ruts warm from the day makes a
blob in some frames and not in others, always at the same place. Each such
blob starts a tentative track, and with the global clutter density in its
score a track there is confirmed after two or three hits. The map learns,
online, how many detections each cell of a square grid in the node's ENU
frame has produced that no moving target explains (detections that fed a
confirmed track moving faster than `moving_speed` are not counted), with
exponential forgetting, and a tentative track in a cell with such a history
needs more hits to be confirmed: one more per `detections_per_hit` static
detections of the cells around it, at most `max_extra_hits` more. The bar rises but is
finite, so a person who stands still (people stranded in the desert stop
moving) is confirmed eventually; a track already confirmed keeps its
confirmation wherever it stops.

The cells live in a fixed-size open-addressing hash table (keys, counts and
the time each count refers to), so the memory is bounded whatever ground the
node's cameras sweep: when a probe run is full, the weakest cell is
forgotten first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edge.tracking.table import CONFIRMED, STATUS, TENTATIVE

SLOTS = 1 << 15  # cells remembered at once (a power of two)
PROBES = 8  # slots looked at per cell before the weakest is replaced
_EMPTY = -1
_OFFSET = 1 << 30  # keeps the packed (column, row) key positive


class ClutterRules(NamedTuple):
    cell_m: float
    half_life_s: float
    detections_per_hit: float
    max_extra_hits: int
    moving_speed: float  # m/s; a confirmed track faster than this is a moving target


class ClutterMap:
    """The map's arrays: slot keys, decayed counts, and the time each count refers to."""

    def __init__(self, rules: ClutterRules):
        self.rules = rules
        self.keys = np.full(SLOTS, _EMPTY, np.int64)
        self.counts = np.zeros(SLOTS)
        self.stamps = np.zeros(SLOTS)

    def columns(self):
        return self.keys, self.counts, self.stamps

    def extra_hits_at(self, points: np.ndarray, t: float) -> np.ndarray:
        """The extra hits a tentative track at each of `points` (N, 2) would need at t."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
        return np.array([_extra_hits(*self.columns(), p[0], p[1], t, self.rules) for p in points])


@njit(cache=True)
def _key(e, n, cell_m):
    column = np.int64(np.floor(e / cell_m)) + _OFFSET
    row = np.int64(np.floor(n / cell_m)) + _OFFSET
    return column * (2 * _OFFSET) + row


@njit(cache=True)
def _slot_of(key):
    # Fibonacci hashing spreads neighbouring cells over the table.
    return ((key * np.int64(-7046029254386353131)) >> np.int64(40)) & (SLOTS - 1)


@njit(cache=True)
def _decayed(counts, stamps, s, t, half_life_s):
    return counts[s] * 0.5 ** (max(t - stamps[s], 0.0) / half_life_s)


@njit(cache=True)
def _find(keys, counts, stamps, key, t, half_life_s, insert):
    """The slot of `key`; with `insert`, a slot made for it (an empty one, else the
    weakest of its probe run); otherwise -1 when it is not there."""
    start = _slot_of(key)
    weakest = -1
    weakest_count = np.inf
    for p in range(PROBES):
        s = (start + p) & (SLOTS - 1)
        if keys[s] == key:
            return s
        if keys[s] == _EMPTY:
            if not insert:
                return -1
            keys[s] = key
            counts[s] = 0.0
            stamps[s] = t
            return s
        c = _decayed(counts, stamps, s, t, half_life_s)
        if c < weakest_count:
            weakest_count = c
            weakest = s
    if not insert:
        return -1
    keys[weakest] = key
    counts[weakest] = 0.0
    stamps[weakest] = t
    return weakest


@njit(cache=True)
def _extra_hits(keys, counts, stamps, e, n, t, rules):
    """The static detections of the four cells nearest (e, n), in extra hits: a block of
    four rather than one cell, so that a track near a cell's edge (a rock's blobs
    scatter over the edge) sees the whole of what is around it."""
    c = rules.cell_m
    e0 = (np.floor(e / c - 0.5) + 0.5) * c  # the centre of the lower-left cell of the block
    n0 = (np.floor(n / c - 0.5) + 0.5) * c
    total = 0.0
    for de in range(2):
        for dn in range(2):
            key = _key(e0 + de * c, n0 + dn * c, c)
            s = _find(keys, counts, stamps, key, t, rules.half_life_s, False)
            if s >= 0:
                total += _decayed(counts, stamps, s, t, rules.half_life_s)
    return min(np.int64(total / rules.detections_per_hit), rules.max_extra_hits)


@njit(cache=True)
def record(keys, counts, stamps, x, ints, n, z, usable, assigned, t, rules):
    """Count this scan's detections that no moving confirmed track used, each in its cell."""
    explained = np.zeros(z.shape[0], np.bool_)
    for i in range(n):
        j = assigned[i]
        if j >= 0 and ints[STATUS, i] == CONFIRMED:
            explained[j] = np.hypot(x[2, i], x[3, i]) > rules.moving_speed
    for j in usable:
        if explained[j]:
            continue
        s = _find(keys, counts, stamps, _key(z[j, 0], z[j, 1], rules.cell_m), t,
                  rules.half_life_s, True)  # fmt: skip
        counts[s] = _decayed(counts, stamps, s, t, rules.half_life_s) + 1.0
        stamps[s] = t


@njit(cache=True)
def required_hits(keys, counts, stamps, x, ints, n, t, rules):
    """Per track 0..n-1, the extra hits it needs to be confirmed where it is now (0 for
    confirmed tracks: the map never takes a confirmation back)."""
    extra = np.zeros(n, np.int64)
    if rules.max_extra_hits == 0:
        return extra
    for i in range(n):
        if ints[STATUS, i] == TENTATIVE:
            extra[i] = _extra_hits(keys, counts, stamps, x[0, i], x[1, i], t, rules)
    return extra
