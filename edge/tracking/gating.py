"""Gating: which (track, measurement) pairs are close enough to consider.

Comparing every track with every measurement costs O(T * N). Instead the
measurements are bucketed in a uniform grid of square cells, and each track
looks only at the cells its gate can reach, so the cost grows with the number
of pairs that are actually close, not with T * N.

A pair passes the gate when its squared Mahalanobis distance d² = ν' S⁻¹ ν is
at most `gate` (a chi-square quantile with 2 degrees of freedom) and a target
of the track's class could have made it (`bounds.possible`). Each pair
comes back with d² and ln det S, which the association and the track score need.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.tracking.bounds import possible
from edge.tracking.kalman import innovation

# Cell keys pack (column, row) into one int64; the offset keeps them positive
# for coordinates within +-2^20 cells of the origin.
_CELL_OFFSET = 1 << 20
_ROW_STRIDE = 1 << 22


@njit(cache=True)
def _cell_key(column, row):
    return (column + _CELL_OFFSET) * _ROW_STRIDE + (row + _CELL_OFFSET)


@njit(cache=True)
def _largest_eigenvalue(a, b, c):
    """Largest eigenvalue of the symmetric 2x2 matrix [[a, b], [b, c]]."""
    half_trace = 0.5 * (a + c)
    half_diff = 0.5 * (a - c)
    return half_trace + np.sqrt(half_diff * half_diff + b * b)


@njit(cache=True)
def gate_pairs(x, P, floats, ints, tracks, z, R, measurements, gate, t, limits):
    """Pairs of tracks[a] and measurements[b] inside the gate, at time t, within the
    class limits (`bounds`).

    Returns (pair_track, pair_meas, d2, log_det_S) where pair_track and
    pair_meas are positions into `tracks` and `measurements` (not global
    indices), so that later stages can work on small dense local numbering.
    """
    n_tracks = tracks.shape[0]
    n_meas = measurements.shape[0]
    empty_i = np.empty(0, np.int64)
    empty_f = np.empty(0, np.float64)
    if n_tracks == 0 or n_meas == 0:
        return empty_i, empty_i.copy(), empty_f, empty_f.copy()

    # The search radius of a track covers its gate for the widest measurement
    # covariance in the scan.
    widest_r = 0.0
    for b in range(n_meas):
        j = measurements[b]
        r = _largest_eigenvalue(R[j, 0, 0], 0.5 * (R[j, 0, 1] + R[j, 1, 0]), R[j, 1, 1])
        widest_r = max(widest_r, r)
    radius = np.empty(n_tracks)
    for a in range(n_tracks):
        i = tracks[a]
        p = _largest_eigenvalue(P[0, 0, i], P[0, 1, i], P[1, 1, i])
        radius[a] = np.sqrt(gate * (p + widest_r))
    cell = max(np.mean(radius), 1e-3)

    keys = np.empty(n_meas, np.int64)
    for b in range(n_meas):
        j = measurements[b]
        keys[b] = _cell_key(np.int64(np.floor(z[j, 0] / cell)), np.int64(np.floor(z[j, 1] / cell)))
    order = np.argsort(keys)
    sorted_keys = keys[order]

    capacity = 4 * (n_tracks + n_meas)
    pair_track = np.empty(capacity, np.int64)
    pair_meas = np.empty(capacity, np.int64)
    pair_d2 = np.empty(capacity)
    pair_logdet = np.empty(capacity)
    count = 0
    for a in range(n_tracks):
        i = tracks[a]
        e0 = np.int64(np.floor((x[0, i] - radius[a]) / cell))
        e1 = np.int64(np.floor((x[0, i] + radius[a]) / cell))
        n0 = np.int64(np.floor((x[1, i] - radius[a]) / cell))
        n1 = np.int64(np.floor((x[1, i] + radius[a]) / cell))
        for column in range(e0, e1 + 1):
            # Rows of one column are contiguous in key order.
            lo = np.searchsorted(sorted_keys, _cell_key(column, n0))
            hi = np.searchsorted(sorted_keys, _cell_key(column, n1), side="right")
            for s in range(lo, hi):
                b = order[s]
                j = measurements[b]
                if abs(z[j, 0] - x[0, i]) > radius[a] or abs(z[j, 1] - x[1, i]) > radius[a]:
                    continue  # outside the gate's bounding box: skip the algebra
                d2, log_det = innovation(x, P, i, z, R, j)[5:]
                if d2 <= gate and possible(x, P, floats, ints, i, z, R, j, d2, t, limits):
                    if count == capacity:
                        capacity *= 2
                        pair_track = _grow(pair_track, capacity)
                        pair_meas = _grow(pair_meas, capacity)
                        pair_d2 = _grow(pair_d2, capacity)
                        pair_logdet = _grow(pair_logdet, capacity)
                    pair_track[count] = a
                    pair_meas[count] = b
                    pair_d2[count] = d2
                    pair_logdet[count] = log_det
                    count += 1
    return pair_track[:count], pair_meas[:count], pair_d2[:count], pair_logdet[:count]


@njit(cache=True)
def _grow(values, capacity):
    grown = np.empty(capacity, values.dtype)
    grown[: values.shape[0]] = values
    return grown
