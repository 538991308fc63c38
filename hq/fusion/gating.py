"""Gating of node tracks against global tracks (Numba): squared Mahalanobis distances.

`pair_distances` measures each row against the one global track it is linked
to; `gated_pairs` finds, among many candidate global tracks, every pair inside
the chi-square gate without trying rows x candidates. Both compare a pair at
the later of its two times (hq/fusion/algebra.py).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hq.fusion.algebra import cholesky, largest_variance, predict_into


@njit(cache=True, inline="always")
def _distance(x, P, t, k, gx, gP, gt, slot, q, informative_variance, s):
    """Squared Mahalanobis distance of row k and global slot `slot` at the later time, and its dof.

    Velocity counts (4 dof) only when both tracks know it, that is when neither
    velocity covariance has a variance above `informative_variance`; otherwise
    the position alone decides (2 dof). `s` is (5, 4, 4) scratch.
    """
    xr, Pr, S, L, T = s[0, 0], s[1], s[2], s[3], s[4]
    xg = s[0, 1]
    dt = t[k] - gt[slot]
    if dt >= 0.0:
        predict_into(gx[slot], gP[slot], dt, q, xg, T, S)
        xr[:] = x[k]
        Pr[:, :] = P[k]
    else:
        predict_into(x[k], P[k], -dt, q, xr, Pr, S)
        xg[:] = gx[slot]
        T[:, :] = gP[slot]
    for i in range(4):
        for j in range(4):
            S[i, j] = Pr[i, j] + T[i, j]
    both_know_velocity = (largest_variance(P[k], 2) <= informative_variance
                          and largest_variance(gP[slot], 2) <= informative_variance)  # fmt: skip
    dof = 4 if both_know_velocity else 2
    if not cholesky(S, dof, L):
        return np.inf, dof
    # d² = |L^-1 d|², by forward substitution.
    d2 = 0.0
    y = s[0, 2]
    for i in range(dof):
        value = xr[i] - xg[i]
        for j in range(i):
            value -= L[i, j] * y[j]
        y[i] = value / L[i, i]
        d2 += y[i] * y[i]
    return d2, dof


@njit(cache=True)
def pair_distances(x, P, t, rows, gx, gP, gt, slots, q, informative_variance):
    """d² and dof of node track rows[k] against global slot slots[k]."""
    n = rows.shape[0]
    d2 = np.empty(n)
    dof = np.empty(n, np.int64)
    scratch = np.zeros((5, 4, 4))
    for k in range(n):
        d2[k], dof[k] = _distance(x, P, t, rows[k], gx, gP, gt, slots[k], q,
                                  informative_variance, scratch)  # fmt: skip
    return d2, dof


@njit(cache=True, inline="always")
def _spreads(P, rows):
    """Root traces of the position and velocity blocks of P[rows[k]]: (N,), (N,)."""
    n = rows.shape[0]
    position = np.empty(n)
    velocity = np.empty(n)
    for k in range(n):
        row = rows[k]
        position[k] = math.sqrt(max(P[row, 0, 0] + P[row, 1, 1], 0.0))
        velocity[k] = math.sqrt(max(P[row, 2, 2] + P[row, 3, 3], 0.0))
    return position, velocity


# Grid cell keys pack (column, row) into one int64; the offset keeps both positive for
# positions within 2^30 cells of the origin.
_CELL_OFFSET = 1 << 30
_ROW_STRIDE = 1 << 31
_REACH_SLACK = 1.0001  # a reach a little wider than the bound, so that rounding never cuts


@njit(cache=True, inline="always")
def _cell_key(column, row):
    return (column + _CELL_OFFSET) * _ROW_STRIDE + (row + _CELL_OFFSET)


@njit(cache=True)
def _reaches(x, t, slots, position, velocity, newest_other, widest_gate, q):
    """How far (m) the position of track slots[i] may be from that of a track it could gate
    with, counting only its own share: the pair can gate only if their positions are at most
    the sum of their two reaches apart.

    A pair is compared at the later of its times. The share of the track that is predicted
    there (by at most `lag`, up to the newest track of the other side) is the gate times its
    spread (as `gated_pairs` bounds it) plus the way it travels, plus its share of the process
    noise; the share of the newer one is the gate times its position spread alone.
    """
    root_gate = math.sqrt(widest_gate)
    reach = np.empty(slots.shape[0])
    for i in range(slots.shape[0]):
        s = slots[i]
        lag = max(newest_other - t[s], 0.0)
        speed = math.sqrt(x[s, 2] * x[s, 2] + x[s, 3] * x[s, 3])
        noise = math.sqrt(widest_gate * 2.0 * q * lag * lag * lag / 3.0)
        reach[i] = _REACH_SLACK * (root_gate * (position[i] + lag * velocity[i]) + lag * speed
                                   + noise)  # fmt: skip
    return reach


@njit(cache=True, inline="always")
def _gated_d2(x, P, t, k, gx, gP, gt, slot, spreads, q, informative_variance, gate2, gate4,
              s):  # fmt: skip
    """d² of row k and global slot `slot` if they gate, else -1. `spreads` holds the row's
    and the slot's position and velocity spreads (root traces).

    Most pairs are far apart, so each is first tested on Euclidean distance: d² is at least
    |d_pos|² over the trace of the position block of S, and the trace of a predicted position
    block is at most (sqrt(tr Ppp) + |dt| sqrt(tr Pvv))² + tr Qpp (Cauchy-Schwarz on the
    cross term), which needs no matrix work.
    """
    row_position, row_velocity, g_position, g_velocity = spreads
    dt = t[k] - gt[slot]
    lag = abs(dt)
    # Predict the older of the two by |dt|; only its spread grows.
    if dt >= 0.0:
        de = x[k, 0] - (gx[slot, 0] + dt * gx[slot, 2])
        dn = x[k, 1] - (gx[slot, 1] + dt * gx[slot, 3])
        older = g_position + lag * g_velocity
        spread = row_position**2 + older * older
    else:
        de = x[k, 0] + lag * x[k, 2] - gx[slot, 0]
        dn = x[k, 1] + lag * x[k, 3] - gx[slot, 1]
        older = row_position + lag * row_velocity
        spread = g_position**2 + older * older
    spread += 2.0 * q * lag * lag * lag / 3.0
    if de * de + dn * dn > max(gate2, gate4) * spread:
        return -1.0
    d2, dof = _distance(x, P, t, k, gx, gP, gt, slot, q, informative_variance, s)
    if d2 > (gate4 if dof == 4 else gate2):
        return -1.0
    return d2


@njit(cache=True)
def gated_pairs(x, P, t, gx, gP, gt, candidates, q, informative_variance, gate2, gate4):
    """Every (row, candidate) pair inside the chi-square gate, by row, then candidate.

    Returns (row, position in `candidates`, d²). Candidates are bucketed in a grid of
    square cells, and each row looks only at the cells that its reach and the widest
    reach of a bucketed candidate can span (`_reaches`), so the cost grows with the
    pairs that are near, not with rows x candidates. Candidates that reach farther than
    one cell (tracks coasting for long, or without a velocity) are few, and every row
    tries them.
    """
    n_rows, n_candidates = x.shape[0], candidates.shape[0]
    rows = np.arange(n_rows)
    widest_gate = max(gate2, gate4)
    row_position, row_velocity = _spreads(P, rows)
    g_position, g_velocity = _spreads(gP, candidates)
    newest_row = t.max() if n_rows else -np.inf
    newest_candidate = gt[candidates].max() if n_candidates else -np.inf
    row_reach = _reaches(x, t, rows, row_position, row_velocity, newest_candidate,
                         widest_gate, q)  # fmt: skip
    g_reach = _reaches(gx, gt, candidates, g_position, g_velocity, newest_row, widest_gate, q)

    cell = max(2.0 * np.median(g_reach), 1.0) if n_candidates else 1.0
    wide = np.flatnonzero(~(g_reach <= cell))  # NaN too
    bucketed = np.flatnonzero(g_reach <= cell)
    keys = np.empty(bucketed.shape[0], np.int64)
    for i in range(bucketed.shape[0]):
        slot = candidates[bucketed[i]]
        keys[i] = _cell_key(np.int64(np.floor(gx[slot, 0] / cell)),
                            np.int64(np.floor(gx[slot, 1] / cell)))  # fmt: skip
    order = np.argsort(keys)
    sorted_keys, in_cells = keys[order], bucketed[order]

    capacity = 2 * n_rows + 16
    pair_row = np.empty(capacity, np.int64)
    pair_candidate = np.empty(capacity, np.int64)
    pair_d2 = np.empty(capacity)
    count = 0
    near = np.empty(n_candidates, np.int64)
    scratch = np.zeros((5, 4, 4))
    for k in range(n_rows):
        m = 0
        radius = row_reach[k] + cell
        columns = 2.0 * radius / cell + 2.0  # each costs two binary searches
        if not columns < 0.125 * n_candidates + 16.0:  # inf and NaN too
            for c in bucketed:  # a row that reaches that far: every candidate
                near[m] = c
                m += 1
        else:
            n0 = np.int64(math.floor((x[k, 1] - radius) / cell))
            n1 = np.int64(math.floor((x[k, 1] + radius) / cell))
            e0 = np.int64(math.floor((x[k, 0] - radius) / cell))
            e1 = np.int64(math.floor((x[k, 0] + radius) / cell))
            for column in range(e0, e1 + 1):
                # The cells of one column are contiguous in key order.
                low = np.searchsorted(sorted_keys, _cell_key(column, n0))
                high = np.searchsorted(sorted_keys, _cell_key(column, n1), side="right")
                for i in range(low, high):
                    near[m] = in_cells[i]
                    m += 1
        for c in wide:
            near[m] = c
            m += 1
        for c in np.sort(near[:m]):
            slot = candidates[c]
            spreads = (row_position[k], row_velocity[k], g_position[c], g_velocity[c])
            d2 = _gated_d2(x, P, t, k, gx, gP, gt, slot, spreads, q, informative_variance, gate2,
                           gate4, scratch)  # fmt: skip
            if d2 < 0.0:
                continue
            if count == capacity:
                capacity *= 2
                pair_row = _grown(pair_row, capacity)
                pair_candidate = _grown(pair_candidate, capacity)
                pair_d2 = _grown(pair_d2, capacity)
            pair_row[count] = k
            pair_candidate[count] = c
            pair_d2[count] = d2
            count += 1
    return pair_row[:count], pair_candidate[:count], pair_d2[:count]


@njit(cache=True)
def _grown(values, capacity):
    grown = np.empty(capacity, values.dtype)
    grown[: values.shape[0]] = values
    return grown
