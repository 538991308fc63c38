"""The geometry of HQ's alerts, in HQ's ENU frame (east, north in m): one kernel each.

`crossing_fraction` (does a track's step cross a border segment, and where)
and `inside` (is a point in a zone, by the even-odd rule) are the only
implementations of those tests: a detector asks them about one track
(`border_crossings`, `zones_entered`), and `paths_alerting` asks them about
all tracks of a batch at once, so both ways always agree.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wire.geo import EnuFrame

NOT_CROSSING = -1.0
_PARALLEL = 1e-12  # |cross product| of the two directions below this: no crossing


@njit(cache=True, inline="always")
def crossing_fraction(a0, a1, b0, b1, p0, p1, q0, q1):
    """Where the step a -> b crosses the segment p -> q, as the fraction in [0, 1) of the way
    from a to b; NOT_CROSSING when it does not. A step that ends exactly on the segment has
    not crossed it yet; one that starts on it has."""
    r0, r1 = b0 - a0, b1 - a1
    s0, s1 = q0 - p0, q1 - p1
    denominator = r0 * s1 - r1 * s0
    if abs(denominator) < _PARALLEL:
        return NOT_CROSSING
    offset0, offset1 = p0 - a0, p1 - a1
    u = (offset0 * s1 - offset1 * s0) / denominator
    v = (offset0 * r1 - offset1 * r0) / denominator
    return u if 0.0 <= u < 1.0 and 0.0 <= v <= 1.0 else NOT_CROSSING


@njit(cache=True, inline="always")
def inside(x, y, polygon):
    """Whether (x, y) is inside `polygon` ((n, 2), its last vertex joined to its first), by
    the even-odd rule."""
    found = False
    n = polygon.shape[0]
    for i in range(n):
        x0, y0 = polygon[i, 0], polygon[i, 1]
        x1, y1 = polygon[(i + 1) % n, 0], polygon[(i + 1) % n, 1]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            found = not found
    return found


@njit(cache=True)
def border_crossings(before, after, border):
    """`crossing_fraction` of the step before -> after ((2,) each) with each segment of the
    `border` polyline ((n, 2)): (n - 1,)."""
    fractions = np.empty(border.shape[0] - 1)
    for j in range(border.shape[0] - 1):
        fractions[j] = crossing_fraction(before[0], before[1], after[0], after[1],
                                         border[j, 0], border[j, 1],
                                         border[j + 1, 0], border[j + 1, 1])  # fmt: skip
    return fractions


@njit(cache=True)
def zones_entered(before, after, zone_points, zone_starts):
    """Whether the step before -> after enters each zone (inside after, not before); zone z's
    polygon is zone_points[zone_starts[z]:zone_starts[z + 1]]."""
    entered = np.zeros(zone_starts.shape[0] - 1, np.bool_)
    for z in range(zone_starts.shape[0] - 1):
        polygon = zone_points[zone_starts[z] : zone_starts[z + 1]]
        entered[z] = (inside(after[0], after[1], polygon)
                      and not inside(before[0], before[1], polygon))  # fmt: skip
    return entered


@njit(cache=True)
def paths_alerting(before, after, border, zone_points, zone_starts):
    """Which steps before[k] -> after[k] ((m, 2) each) cross a border segment or enter a zone:
    `border_crossings` and `zones_entered` of every step at once."""
    found = np.zeros(before.shape[0], np.bool_)
    for k in range(before.shape[0]):
        a0, a1, b0, b1 = before[k, 0], before[k, 1], after[k, 0], after[k, 1]
        for j in range(border.shape[0] - 1):
            if crossing_fraction(a0, a1, b0, b1, border[j, 0], border[j, 1],
                                 border[j + 1, 0], border[j + 1, 1]) >= 0.0:  # fmt: skip
                found[k] = True
        for z in range(zone_starts.shape[0] - 1):
            polygon = zone_points[zone_starts[z] : zone_starts[z + 1]]
            if inside(b0, b1, polygon) and not inside(a0, a1, polygon):
                found[k] = True
    return found


def side(p, q, point) -> float:
    """Positive left of the directed line p -> q, negative right of it."""
    return (q[0] - p[0]) * (point[1] - p[1]) - (q[1] - p[1]) * (point[0] - p[0])


def to_enu(frame: EnuFrame, points) -> np.ndarray:
    """(lat, lon) points on the frame's ground as (n, 2) east, north."""
    lat, lon = np.array(points, dtype=float).reshape(-1, 2).T
    east, north, _ = frame.from_geodetic(lat, lon, np.full_like(lat, frame.alt))
    return np.stack([east, north], axis=1)
