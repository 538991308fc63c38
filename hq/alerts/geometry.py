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


@njit(cache=True)
def distances_to_line(points, line):
    """Each of (m, 2) points' distance to the polyline `line` ((n, 2), n >= 2): (m,)."""
    distances = np.full(points.shape[0], np.inf)
    for k in range(points.shape[0]):
        x, y = points[k, 0], points[k, 1]
        for j in range(line.shape[0] - 1):
            p0, p1 = line[j, 0], line[j, 1]
            d0, d1 = line[j + 1, 0] - p0, line[j + 1, 1] - p1
            length2 = d0 * d0 + d1 * d1
            s = 0.0 if length2 == 0.0 else ((x - p0) * d0 + (y - p1) * d1) / length2
            s = min(max(s, 0.0), 1.0)
            e0, e1 = x - (p0 + s * d0), y - (p1 + s * d1)
            distances[k] = min(distances[k], np.sqrt(e0 * e0 + e1 * e1))
    return distances


@njit(cache=True)
def last_crossing(before, after, border):
    """(how many segments of `border` the step before -> after crosses, the last one it
    crosses, where along the step: a fraction in [0, 1]); (0, -1, -1.0) for none.

    An odd count changes sides, an even one (around a bend) does not. A segment is crossed
    where its ends lie on the two sides of the step's line, a vertex on the line counting
    as left of it, so a step through a vertex crosses exactly one of the two segments
    there if it goes across, and none or both if it only touches.
    """
    a0, a1 = before[0], before[1]
    r0, r1 = after[0] - a0, after[1] - a1
    length2 = r0 * r0 + r1 * r1
    count, last, at = 0, -1, -1.0
    if length2 == 0.0:
        return count, last, at
    for j in range(border.shape[0] - 1):
        s0 = r0 * (border[j, 1] - a1) - r1 * (border[j, 0] - a0)
        s1 = r0 * (border[j + 1, 1] - a1) - r1 * (border[j + 1, 0] - a0)
        if (s0 >= 0.0) == (s1 >= 0.0):
            continue
        w = s0 / (s0 - s1)  # where the segment meets the step's line
        x0 = border[j, 0] + w * (border[j + 1, 0] - border[j, 0]) - a0
        x1 = border[j, 1] + w * (border[j + 1, 1] - border[j, 1]) - a1
        u = (x0 * r0 + x1 * r1) / length2
        if 0.0 <= u <= 1.0:
            count += 1
            if u >= at:
                last, at = j, u
    return count, last, at


@njit(cache=True)
def crossing_counts(before, after, border):
    """`last_crossing`'s count for each step before[k] -> after[k] ((m, 2) each): (m,)."""
    counts = np.zeros(before.shape[0], np.int64)
    for k in range(before.shape[0]):
        counts[k] = last_crossing(before[k], after[k], border)[0]
    return counts


@njit(cache=True)
def entering_any_zone(before, after, zone_points, zone_starts):
    """Whether each step before[k] -> after[k] enters one of the zones (`zones_entered`)."""
    found = np.zeros(before.shape[0], np.bool_)
    for k in range(before.shape[0]):
        for z in range(zone_starts.shape[0] - 1):
            polygon = zone_points[zone_starts[z] : zone_starts[z + 1]]
            if (inside(after[k, 0], after[k, 1], polygon)
                    and not inside(before[k, 0], before[k, 1], polygon)):  # fmt: skip
                found[k] = True
    return found
