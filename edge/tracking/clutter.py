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

The cells live in a fixed-size open-addressing hash table (key and decayed
count side by side), so the memory is bounded whatever ground the node's cameras sweep:
when a probe run is full, the weakest cell is forgotten first. A track's bar
is looked up only when its score would confirm it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edge.tracking.table import CONFIRMED, STATUS

SLOTS = 1 << 13  # cells remembered at once (a power of two); 128 kB, cache-sized
PROBES = 8  # slots looked at per cell before the weakest is replaced
_EMPTY = -1.0
# A cell's key packs (column, row), each offset to stay positive, into a float64 that
# holds it exactly (under 2^53): a slot is then one row (key, weight) of one array,
# one cache line per look, wherever on the ground. Columns and rows span 2^21 cells.
_OFFSET = 1 << 20
_KEY, _WEIGHT = 0, 1
# Counts are kept as weights relative to an epoch (a count at t is its weight times
# 2^-((t - epoch) / half-life)), so that decaying them costs nothing per cell; the
# weights are brought to a new epoch before the factor could overflow.
_REBASE_HALF_LIVES = 500.0


class ClutterRules(NamedTuple):
    cell_m: float
    half_life_s: float
    detections_per_hit: float
    max_extra_hits: int
    moving_speed: float  # m/s; a confirmed track faster than this is a moving target


class ClutterMap:
    """The map's arrays: slots (key, weight: a count relative to the epoch), the epoch."""

    def __init__(self, rules: ClutterRules):
        self.rules = rules
        self.slots = np.zeros((SLOTS, 2))
        self.slots[:, _KEY] = _EMPTY
        self.epoch = np.full(1, np.nan)  # set by the first detection recorded

    def columns(self):
        return self.slots, self.epoch

    def extra_hits_at(self, points: np.ndarray, t: float) -> np.ndarray:
        """The extra hits a tentative track at each of `points` (N, 2) would need at t."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
        return np.array([extra_hits(*self.columns(), p[0], p[1], t, self.rules) for p in points],
                        np.int64)  # fmt: skip


@njit(cache=True)
def _key(e, n, cell_m):
    """The cell's key as an integer (for hashing); as a float64 it is exact."""
    column = min(max(np.int64(np.floor(e / cell_m)) + _OFFSET, 0), 2 * _OFFSET - 1)
    row = min(max(np.int64(np.floor(n / cell_m)) + _OFFSET, 0), 2 * _OFFSET - 1)
    return column * (2 * _OFFSET) + row


@njit(cache=True)
def _slot_of(key):
    # Fibonacci hashing spreads neighbouring cells over the table.
    return ((key * np.int64(-7046029254386353131)) >> np.int64(40)) & (SLOTS - 1)


@njit(cache=True)
def _find(slots, key, insert):
    """The slot of `key`; with `insert`, a slot made for it (an empty one, else the
    weakest of its probe run); otherwise -1 when it is not there."""
    start = _slot_of(key)
    wanted = np.float64(key)
    weakest = -1
    weakest_weight = np.inf
    for p in range(PROBES):
        s = (start + p) & (SLOTS - 1)
        if slots[s, _KEY] == wanted:
            return s
        if slots[s, _KEY] == _EMPTY:
            if not insert:
                return -1
            slots[s, _KEY] = wanted
            slots[s, _WEIGHT] = 0.0
            return s
        if slots[s, _WEIGHT] < weakest_weight:
            weakest_weight = slots[s, _WEIGHT]
            weakest = s
    if not insert:
        return -1
    slots[weakest, _KEY] = wanted
    slots[weakest, _WEIGHT] = 0.0
    return weakest


@njit(cache=True)
def extra_hits(slots, epoch, e, n, t, rules):
    """The static detections of the four cells nearest (e, n), in extra hits: a block of
    four rather than one cell, so that a track near a cell's edge (a rock's blobs
    scatter over the edge) sees the whole of what is around it."""
    if rules.max_extra_hits == 0 or not np.isfinite(epoch[0]):
        return 0
    c = rules.cell_m
    e0 = (np.floor(e / c - 0.5) + 0.5) * c  # the centre of the lower-left cell of the block
    n0 = (np.floor(n / c - 0.5) + 0.5) * c
    total = 0.0
    for de in range(2):
        for dn in range(2):
            s = _find(slots, _key(e0 + de * c, n0 + dn * c, c), False)
            if s >= 0:
                total += slots[s, _WEIGHT]
    count = total * 0.5 ** ((t - epoch[0]) / rules.half_life_s)
    return min(np.int64(count / rules.detections_per_hit), rules.max_extra_hits)


@njit(cache=True)
def record(slots, epoch, x, ints, n, z, usable, assigned, t, rules):
    """Count this scan's detections that no moving confirmed track used, each in its cell."""
    if rules.max_extra_hits == 0:
        return
    if not np.isfinite(epoch[0]) or (t - epoch[0]) / rules.half_life_s > _REBASE_HALF_LIVES:
        if np.isfinite(epoch[0]):
            slots[:, _WEIGHT] *= 0.5 ** ((t - epoch[0]) / rules.half_life_s)
        epoch[0] = t
    one = 0.5 ** ((epoch[0] - t) / rules.half_life_s)  # a detection now, as a weight
    explained = np.zeros(z.shape[0], np.bool_)
    for i in range(n):
        j = assigned[i]
        if j >= 0 and ints[STATUS, i] == CONFIRMED:
            explained[j] = np.hypot(x[2, i], x[3, i]) > rules.moving_speed
    for j in usable:
        if not explained[j]:
            s = _find(slots, _key(z[j, 0], z[j, 1], rules.cell_m), True)
            slots[s, _WEIGHT] += one
