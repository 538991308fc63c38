"""Covariance intersection of global tracks with node tracks (Numba).

Errors of different posts are correlated in unknown ways (shared maps, clocks
and weather, and a global track already holds earlier updates of the same
node), so summing their information would be overconfident; covariance
intersection stays consistent whatever the correlation.

Global tracks are rows ("slots") of the fusion's table (x (N, 4), P (N, 4, 4)),
and `fuse_rows` is told which slots to touch by an index array, so that the
Python policy around it never loops over tracks. The table is track-major
(unlike the edge tracker's component-major arrays) because fusion gathers and
scatters scattered slots rather than sweeping all tracks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hq.fusion.algebra import inverse_spd, predict_into

OMEGA_TOLERANCE = 1e-14  # Newton's last step on the CI weight


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
    inverse_spd(M, K, L, W)
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
    if not (inverse_spd(Pa, Ia, L, W) and inverse_spd(Pb, Ib, L, W)):
        return -1.0
    omega = _best_omega(Ia, Ib, use_trace, s)
    # v = omega Ia xa + (1 - omega) Ib xb, taken before x_out (maybe xa) is written.
    for i in range(4):
        value = 0.0
        for j in range(4):
            M[i, j] = omega * Ia[i, j] + (1.0 - omega) * Ib[i, j]
            value += omega * Ia[i, j] * xa[j] + (1.0 - omega) * Ib[i, j] * xb[j]
        v[i] = value
    inverse_spd(M, P_out, L, W)
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
        slot = slots[k]
        dt = t[k] - gt[slot]
        if dt >= 0.0:
            predict_into(gx[slot], gP[slot], dt, q, gx[slot], gP[slot], scratch[0])
            gt[slot] = t[k]
            x_row[:] = x[k]
            P_row[:, :] = P[k]
        else:
            predict_into(x[k], P[k], -dt, q, x_row, P_row, scratch[0])
        omega[k] = _fuse_into(gx[slot], gP[slot], x_row, P_row, use_trace, gx[slot], gP[slot],
                              scratch)  # fmt: skip
    return omega
