"""Numba kernels of HQ fusion: prediction, gating distances and covariance intersection.

Tracks are rows: states `x` (N, 4) as [e, n, ve, vn] and covariances `P` (N, 4, 4)
in HQ's ENU frame, m and m/s. Node tracks of one batch are rows of their own
arrays; global tracks are rows ("slots") of the fusion's table, and a kernel is
told which slots to touch by an index array, so that the Python policy around
it never loops over tracks. The table is track-major (unlike the edge tracker's
component-major arrays) because fusion gathers and scatters scattered slots
rather than sweeping all tracks.

Two tracks are compared and fused at the later of their two times: the older
one is predicted forward. Predicting the newer one backward would take process
noise out of its covariance that it never had, and could make it indefinite.

Motion model: nearly constant velocity, white acceleration of power spectral
density q (m²/s³) per axis, as on the edge.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

OMEGA_TOLERANCE = 1e-14  # Newton's last step on the CI weight


# --- small dense algebra on (4, 4) scratch arrays, no allocation in loops -------------------


@njit(cache=True, inline="always")
def _predict_into(x, P, dt, q, x_out, P_out, scratch):
    """x, P predicted dt >= 0 seconds ahead into x_out, P_out (which may be x, P)."""
    # F P F' with F = I + dt (e0 e2' + e1 e3'): rows, then columns, of P gain dt times
    # the matching velocity row or column.
    for i in range(4):
        for j in range(4):
            value = P[i, j]
            if i < 2:
                value += dt * P[i + 2, j]
            scratch[i, j] = value
    for i in range(4):
        for j in range(4):
            value = scratch[i, j]
            if j < 2:
                value += dt * scratch[i, j + 2]
            P_out[i, j] = value
    q11 = q * dt * dt * dt / 3.0
    q12 = q * dt * dt / 2.0
    q22 = q * dt
    for axis in range(2):
        P_out[axis, axis] += q11
        P_out[axis, axis + 2] += q12
        P_out[axis + 2, axis] += q12
        P_out[axis + 2, axis + 2] += q22
    x_out[0] = x[0] + dt * x[2]
    x_out[1] = x[1] + dt * x[3]
    x_out[2] = x[2]
    x_out[3] = x[3]


@njit(cache=True, inline="always")
def _cholesky(A, n, L):
    """Lower-triangular L with L L' = A[:n, :n]; False if that block is not positive definite."""
    for j in range(n):
        pivot = A[j, j]
        for k in range(j):
            pivot -= L[j, k] * L[j, k]
        if not pivot > 0.0:  # also catches NaN
            return False
        diagonal = math.sqrt(pivot)
        L[j, j] = diagonal
        for i in range(j):
            L[i, j] = 0.0
        for i in range(j + 1, n):
            value = A[i, j]
            for k in range(j):
                value -= L[i, k] * L[j, k]
            L[i, j] = value / diagonal
    return True


@njit(cache=True, inline="always")
def _lower_inverse(L, W):
    """W = L^-1 for the (4, 4) lower-triangular L."""
    for j in range(4):
        W[j, j] = 1.0 / L[j, j]
        for i in range(j):
            W[i, j] = 0.0
        for i in range(j + 1, 4):
            value = 0.0
            for k in range(j, i):
                value -= L[i, k] * W[k, j]
            W[i, j] = value / L[i, i]


@njit(cache=True, inline="always")
def _inverse_spd(A, out, L, W):
    """out = A^-1 for a symmetric positive definite (4, 4) A; False if A is not."""
    if not _cholesky(A, 4, L):
        return False
    _lower_inverse(L, W)
    # A^-1 = W' W, W lower triangular: only k >= max(i, j) contributes.
    for i in range(4):
        for j in range(i, 4):
            value = 0.0
            for k in range(j, 4):
                value += W[k, i] * W[k, j]
            out[i, j] = value
            out[j, i] = value
    return True


@njit(cache=True, inline="always")
def _largest_variance(P, first):
    """Largest eigenvalue of the 2x2 block of P starting at (first, first)."""
    a, b, c = P[first, first], P[first, first + 1], P[first + 1, first + 1]
    half_trace = 0.5 * (a + c)
    half_difference = 0.5 * (a - c)
    return half_trace + math.sqrt(half_difference * half_difference + b * b)


# --- covariance intersection --------------------------------------------------------------


@njit(cache=True, inline="always")
def _ci_slopes(omega, Ia, Ib, use_trace, s):
    """First and second derivative in omega of the CI criterion at omega.

    With M = omega Ia + (1 - omega) Ib, D = Ia - Ib, K = M^-1 and N = K D:
    determinant: f = log det K,  f' = -tr(N),    f'' = tr(N N);
    trace:       f = tr(K),      f' = -tr(N K),  f'' = 2 tr(N N K).
    """
    M, L, W, K, N = s[2], s[3], s[4], s[6], s[7]
    for i in range(4):
        for j in range(4):
            M[i, j] = omega * Ia[i, j] + (1.0 - omega) * Ib[i, j]
    _inverse_spd(M, K, L, W)
    for i in range(4):
        for j in range(4):
            value = 0.0
            for k in range(4):
                value += K[i, k] * (Ia[k, j] - Ib[k, j])
            N[i, j] = value
    first = second = 0.0
    for i in range(4):
        for j in range(4):
            if use_trace:
                nn = 0.0
                for k in range(4):
                    nn += N[i, k] * N[k, j]
                first -= N[i, j] * K[j, i]
                second += 2.0 * nn * K[j, i]
            else:
                first -= N[i, j] if i == j else 0.0
                second += N[i, j] * N[j, i]
    return first, second


@njit(cache=True)
def _best_omega(Ia, Ib, use_trace, s):
    """The weight in [0, 1] that minimises the criterion.

    Both criteria are convex in omega (the inverse and -log det are convex in M,
    and M is affine in omega), so the minimum is at an end when the slope there
    points outward, else at the root of the slope: Newton's method, kept inside
    a shrinking bracket by bisection. The root of the slope is found to machine
    precision, which the criterion's values alone cannot give (it is flat there).
    """
    slope_low = _ci_slopes(0.0, Ia, Ib, use_trace, s)[0]
    if slope_low >= 0.0:
        return 0.0
    slope_high = _ci_slopes(1.0, Ia, Ib, use_trace, s)[0]
    if slope_high <= 0.0:
        return 1.0
    low, high = 0.0, 1.0
    omega = slope_low / (slope_low - slope_high)  # the secant's root
    for _ in range(100):
        slope, curvature = _ci_slopes(omega, Ia, Ib, use_trace, s)
        if slope > 0.0:
            high = omega
        elif slope < 0.0:
            low = omega
        else:
            return omega
        step = omega - slope / curvature if curvature > 0.0 else -1.0
        if not low < step < high:
            step = 0.5 * (low + high)
        if abs(step - omega) <= OMEGA_TOLERANCE:
            return step
        omega = step
    return omega


@njit(cache=True)
def _fuse_into(xa, Pa, xb, Pb, use_trace, x_out, P_out, s):
    """CI of (xa, Pa) and (xb, Pb) into x_out, P_out (which may be xa, Pa).

    Returns omega, the weight of a, or -1.0 (nothing written) if a covariance is
    not positive definite. `s` is (8, 4, 4) scratch.
    """
    Ia, Ib, M, L, W, v = s[0], s[1], s[2], s[3], s[4], s[5, 0]
    if not (_inverse_spd(Pa, Ia, L, W) and _inverse_spd(Pb, Ib, L, W)):
        return -1.0
    omega = _best_omega(Ia, Ib, use_trace, s)
    # v = omega Ia xa + (1 - omega) Ib xb, taken before x_out (maybe xa) is written.
    for i in range(4):
        value = 0.0
        for j in range(4):
            M[i, j] = omega * Ia[i, j] + (1.0 - omega) * Ib[i, j]
            value += omega * Ia[i, j] * xa[j] + (1.0 - omega) * Ib[i, j] * xb[j]
        v[i] = value
    _inverse_spd(M, P_out, L, W)
    for i in range(4):
        value = 0.0
        for j in range(4):
            value += P_out[i, j] * v[j]
        x_out[i] = value
    return omega


@njit(cache=True)
def covariance_intersection(xa, Pa, xb, Pb, use_trace):
    """Row-wise CI of (xa[k], Pa[k]) with (xb[k], Pb[k]).

    P = (omega Pa^-1 + (1 - omega) Pb^-1)^-1 and x = P (omega Pa^-1 xa + (1 - omega) Pb^-1 xb),
    omega minimising trace(P) (use_trace) or det(P). Returns (x, P, omega); a row whose
    input covariance is not positive definite has omega -1 and NaN state.
    """
    n = xa.shape[0]
    x = np.full((n, 4), np.nan)
    P = np.full((n, 4, 4), np.nan)
    omega = np.empty(n)
    scratch = np.zeros((8, 4, 4))
    for k in range(n):
        omega[k] = _fuse_into(xa[k], Pa[k], xb[k], Pb[k], use_trace, x[k], P[k], scratch)
    return x, P, omega


@njit(cache=True)
def fuse_rows(gx, gP, gt, slots, x, P, t, q, use_trace):
    """In place: global track slots[k] fused by CI with node track row k.

    Both are taken to the later of their times; the global track's time never
    goes back. Returns each row's omega (weight of the global track), -1 where
    a covariance was not positive definite and nothing changed.
    """
    omega = np.empty(slots.shape[0])
    scratch = np.zeros((8, 4, 4))
    x_row = np.empty(4)
    P_row = np.empty((4, 4))
    for k in range(slots.shape[0]):
        g = slots[k]
        dt = t[k] - gt[g]
        if dt >= 0.0:
            _predict_into(gx[g], gP[g], dt, q, gx[g], gP[g], scratch[0])
            gt[g] = t[k]
            x_row[:] = x[k]
            P_row[:, :] = P[k]
        else:
            _predict_into(x[k], P[k], -dt, q, x_row, P_row, scratch[0])
        omega[k] = _fuse_into(gx[g], gP[g], x_row, P_row, use_trace, gx[g], gP[g], scratch)
    return omega


# --- node tracks into HQ's frame ------------------------------------------------------------


@njit(cache=True)
def node_states(numbers, M, c, unknown_velocity_variance):
    """Node tracks' states in HQ's frame from their wire numbers, one row each.

    `numbers` (n, 15) holds per track: id, time, position e n, velocity e n, position
    covariance (2, 2) and velocity covariance (2, 2) row-major, quality. HQ ENU = M @ node
    ENU + c (`frame_transform`); a ground track's up is 0 in its node's frame. Each
    covariance is made symmetric first. Returns x (n, 4), P (n, 4, 4), the HQ up coordinate
    (n,), whether the track is usable (finite time and position, positive definite position
    covariance) and whether its velocity is unknown (not finite, or its covariance not
    positive definite): then zero, with `unknown_velocity_variance` on the diagonal.
    """
    n = numbers.shape[0]
    x = np.zeros((n, 4))
    P = np.zeros((n, 4, 4))
    up = np.empty(n)
    usable = np.empty(n, np.bool_)
    no_velocity = np.empty(n, np.bool_)
    for k in range(n):
        row = numbers[k]
        finite = True
        for i in (1, 2, 3, 6, 7, 8, 9):
            finite = finite and math.isfinite(row[i])
        usable[k] = finite and _symmetric_positive_definite(row[6:10], P[k, :2, :2])
        finite = True
        for i in (4, 5, 10, 11, 12, 13):
            finite = finite and math.isfinite(row[i])
        velocity_known = _symmetric_positive_definite(row[10:14], P[k, 2:, 2:]) and finite
        no_velocity[k] = not velocity_known
        ve, vn = (row[4], row[5]) if velocity_known else (0.0, 0.0)
        if not velocity_known:
            P[k, 2, 2] = P[k, 3, 3] = unknown_velocity_variance
            P[k, 2, 3] = P[k, 3, 2] = 0.0
        x[k, 0] = M[0, 0] * row[2] + M[0, 1] * row[3] + c[0]
        x[k, 1] = M[1, 0] * row[2] + M[1, 1] * row[3] + c[1]
        x[k, 2] = M[0, 0] * ve + M[0, 1] * vn
        x[k, 3] = M[1, 0] * ve + M[1, 1] * vn
        up[k] = M[2, 0] * row[2] + M[2, 1] * row[3] + c[2]
        _rotate_block(M, P[k, :2, :2])
        _rotate_block(M, P[k, 2:, 2:])
    return x, P, up, usable, no_velocity


@njit(cache=True, inline="always")
def _symmetric_positive_definite(entries, out):
    """out = the symmetric part of the 2x2 matrix of row-major `entries`; whether it is
    positive definite (False for NaN)."""
    a, b, d = entries[0], 0.5 * (entries[1] + entries[2]), entries[3]
    out[0, 0], out[0, 1], out[1, 0], out[1, 1] = a, b, b, d
    return a > 0.0 and a * d - b * b > 0.0


@njit(cache=True, inline="always")
def _rotate_block(M, A):
    """A = J A J' in place for the (2, 2) symmetric A, J = M[:2, :2]."""
    a, b, d = A[0, 0], A[0, 1], A[1, 1]
    j00, j01, j10, j11 = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
    # (J A)[i, :] then times J' on the right.
    r00, r01 = j00 * a + j01 * b, j00 * b + j01 * d
    r10, r11 = j10 * a + j11 * b, j10 * b + j11 * d
    A[0, 0] = r00 * j00 + r01 * j01
    A[0, 1] = A[1, 0] = r00 * j10 + r01 * j11
    A[1, 1] = r10 * j10 + r11 * j11


# --- gating distances ---------------------------------------------------------------------


@njit(cache=True, inline="always")
def _distance(x, P, t, k, gx, gP, gt, g, q, informative_variance, s):
    """Squared Mahalanobis distance of row k and slot g at the later time, and its dof.

    Velocity counts (4 dof) only when both tracks know it, that is when neither
    velocity covariance has a variance above `informative_variance`; otherwise
    the position alone decides (2 dof). `s` is (5, 4, 4) scratch.
    """
    xr, Pr, S, L, T = s[0, 0], s[1], s[2], s[3], s[4]
    xg = s[0, 1]
    dt = t[k] - gt[g]
    if dt >= 0.0:
        _predict_into(gx[g], gP[g], dt, q, xg, T, S)
        xr[:] = x[k]
        Pr[:, :] = P[k]
    else:
        _predict_into(x[k], P[k], -dt, q, xr, Pr, S)
        xg[:] = gx[g]
        T[:, :] = gP[g]
    for i in range(4):
        for j in range(4):
            S[i, j] = Pr[i, j] + T[i, j]
    both_know_velocity = (_largest_variance(P[k], 2) <= informative_variance
                          and _largest_variance(gP[g], 2) <= informative_variance)  # fmt: skip
    dof = 4 if both_know_velocity else 2
    if not _cholesky(S, dof, L):
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
        r = rows[k]
        position[k] = math.sqrt(max(P[r, 0, 0] + P[r, 1, 1], 0.0))
        velocity[k] = math.sqrt(max(P[r, 2, 2] + P[r, 3, 3], 0.0))
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
def _gated_d2(x, P, t, k, gx, gP, gt, g, spreads, q, informative_variance, gate2, gate4, s):
    """d² of row k and slot g if they gate, else -1. `spreads` holds the row's and the slot's
    position and velocity spreads (root traces).

    Most pairs are far apart, so each is first tested on Euclidean distance: d² is at least
    |d_pos|² over the trace of the position block of S, and the trace of a predicted position
    block is at most (sqrt(tr Ppp) + |dt| sqrt(tr Pvv))² + tr Qpp (Cauchy-Schwarz on the
    cross term), which needs no matrix work.
    """
    row_position, row_velocity, g_position, g_velocity = spreads
    dt = t[k] - gt[g]
    lag = abs(dt)
    # Predict the older of the two by |dt|; only its spread grows.
    if dt >= 0.0:
        de = x[k, 0] - (gx[g, 0] + dt * gx[g, 2])
        dn = x[k, 1] - (gx[g, 1] + dt * gx[g, 3])
        older = g_position + lag * g_velocity
        spread = row_position**2 + older * older
    else:
        de = x[k, 0] + lag * x[k, 2] - gx[g, 0]
        dn = x[k, 1] + lag * x[k, 3] - gx[g, 1]
        older = row_position + lag * row_velocity
        spread = g_position**2 + older * older
    spread += 2.0 * q * lag * lag * lag / 3.0
    if de * de + dn * dn > max(gate2, gate4) * spread:
        return -1.0
    d2, dof = _distance(x, P, t, k, gx, gP, gt, g, q, informative_variance, s)
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
        g = candidates[bucketed[i]]
        keys[i] = _cell_key(np.int64(np.floor(gx[g, 0] / cell)),
                            np.int64(np.floor(gx[g, 1] / cell)))  # fmt: skip
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
            g = candidates[c]
            spreads = (row_position[k], row_velocity[k], g_position[c], g_velocity[c])
            d2 = _gated_d2(x, P, t, k, gx, gP, gt, g, spreads, q, informative_variance, gate2,
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


def warm() -> None:
    """Compile (or load from the cache) every kernel on a tiny problem."""
    x = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    P = np.tile(np.eye(4), (2, 1, 1))
    t = np.array([0.0, 1.0])
    slots = np.array([0, 1], np.int64)
    covariance_intersection(x, P, x, P, True)
    covariance_intersection(x, P, x, P, False)
    pair_distances(x, P, t, slots, x, P, t, slots, 0.1, 25.0)
    gated_pairs(x, P, t, x.copy(), P.copy(), t.copy(), slots, 0.1, 25.0, 18.0, 23.0)
    fuse_rows(x.copy(), P.copy(), t.copy(), slots, x, P, t, 0.1, False)
    node_states(np.zeros((1, 15)), np.eye(3), np.zeros(3), 2500.0)
