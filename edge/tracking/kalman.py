"""Batched Kalman kernels for the nearly-constant-velocity model in 2-D.

State `[e, n, ve, vn]`, position-only measurements `z = [e, n]`.

Layout is structure of arrays: `x` has shape (4, capacity) and `P` has shape
(4, 4, capacity), so that component `x[k, i]` of consecutive tracks sits in
consecutive memory and the per-track loop vectorises. Kernels work in place on
the first `n` tracks (or on the tracks named by an index array) and take plain
float64 arrays; the Python tracker around them holds the policy.

The per-track arithmetic is written out for the model's structure (F is the
identity plus dt in two places, H picks the position) so that no temporary
matrices are allocated in the loop; the algebra is ordinary linear KF algebra
and is checked against filterpy in the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def upper_triangle(P, i):
    """The 10 distinct entries of track i's covariance: 00 01 02 03 11 12 13 22 23 33."""
    return (
        P[0, 0, i], P[0, 1, i], P[0, 2, i], P[0, 3, i], P[1, 1, i],
        P[1, 2, i], P[1, 3, i], P[2, 2, i], P[2, 3, i], P[3, 3, i],
    )  # fmt: skip


@njit(cache=True, inline="always")
def store_one(x, P, i, u):
    """Write track i's state and covariance from (x0..x3, upper triangle of P)."""
    for a in range(4):
        x[a, i] = u[a]
    P[0, 0, i] = u[4]
    P[0, 1, i] = P[1, 0, i] = u[5]
    P[0, 2, i] = P[2, 0, i] = u[6]
    P[0, 3, i] = P[3, 0, i] = u[7]
    P[1, 1, i] = u[8]
    P[1, 2, i] = P[2, 1, i] = u[9]
    P[1, 3, i] = P[3, 1, i] = u[10]
    P[2, 2, i] = u[11]
    P[2, 3, i] = P[3, 2, i] = u[12]
    P[3, 3, i] = u[13]


@njit(cache=True)
def predict(x, P, dt, q, n):
    """Predict tracks 0..n-1 forward by their own dt[i] seconds.

    White-acceleration model with power spectral density q (m^2/s^3):
    per axis Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]].
    """
    for i in range(n):
        d = dt[i]
        p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = upper_triangle(P, i)
        q11 = q * d * d * d / 3.0
        q12 = q * d * d / 2.0
        q22 = q * d
        # F P F^T with F = I + d * (e0 e2^T + e1 e3^T), then + Q.
        store_one(x, P, i, (
            x[0, i] + d * x[2, i],
            x[1, i] + d * x[3, i],
            x[2, i],
            x[3, i],
            p00 + 2.0 * d * p02 + d * d * p22 + q11,
            p01 + d * (p03 + p12) + d * d * p23,
            p02 + d * p22 + q12,
            p03 + d * p23,
            p11 + 2.0 * d * p13 + d * d * p33 + q11,
            p12 + d * p23,
            p13 + d * p33 + q12,
            p22 + q22,
            p23,
            p33 + q22,
        ))  # fmt: skip


@njit(cache=True)
def innovation(x, P, i, z, R, j):
    """Innovation of track i against measurement j.

    Returns (nu_e, nu_n, s00, s01, s11, mahalanobis_squared, log_det_S).
    """
    nu0 = z[j, 0] - x[0, i]
    nu1 = z[j, 1] - x[1, i]
    s00 = P[0, 0, i] + R[j, 0, 0]
    s01 = P[0, 1, i] + 0.5 * (R[j, 0, 1] + R[j, 1, 0])
    s11 = P[1, 1, i] + R[j, 1, 1]
    det = s00 * s11 - s01 * s01
    d2 = (s11 * nu0 * nu0 - 2.0 * s01 * nu0 * nu1 + s00 * nu1 * nu1) / det
    return nu0, nu1, s00, s01, s11, d2, np.log(det)


@njit(cache=True, inline="always")
def _joseph_element(pab, pa0, pa1, p0b, p1b, p00, p01, p11, ka0, ka1, kb0, kb1, r00, r01, r11):
    """Element (a, b) of (I - K H) P (I - K H)^T + K R K^T for H = [I 0]."""
    b_ab = pab - ka0 * p0b - ka1 * p1b
    b_a0 = pa0 - ka0 * p00 - ka1 * p01
    b_a1 = pa1 - ka0 * p01 - ka1 * p11
    krk = ka0 * (r00 * kb0 + r01 * kb1) + ka1 * (r01 * kb0 + r11 * kb1)
    return b_ab - b_a0 * kb0 - b_a1 * kb1 + krk


@njit(cache=True, inline="always")
def updated_one(x, P, i, z, R, j):
    """Track i updated with measurement j, without writing it back.

    Returns the 4 state components followed by the 10 upper-triangle entries
    of the Joseph-form covariance, row by row (00 01 02 03 11 12 13 22 23 33).
    P+ = (I - K H) P (I - K H)^T + K R K^T keeps P symmetric and positive
    semi-definite under rounding, which the short form does not.
    """
    r00 = R[j, 0, 0]
    r01 = 0.5 * (R[j, 0, 1] + R[j, 1, 0])
    r11 = R[j, 1, 1]
    p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = upper_triangle(P, i)
    s00 = p00 + r00
    s01 = p01 + r01
    s11 = p11 + r11
    inv_det = 1.0 / (s00 * s11 - s01 * s01)
    nu0 = z[j, 0] - x[0, i]
    nu1 = z[j, 1] - x[1, i]

    # Gain K = P H^T S^-1; row a of K is (ka0, ka1).
    k00 = (p00 * s11 - p01 * s01) * inv_det
    k01 = (p01 * s00 - p00 * s01) * inv_det
    k10 = (p01 * s11 - p11 * s01) * inv_det
    k11 = (p11 * s00 - p01 * s01) * inv_det
    k20 = (p02 * s11 - p12 * s01) * inv_det
    k21 = (p12 * s00 - p02 * s01) * inv_det
    k30 = (p03 * s11 - p13 * s01) * inv_det
    k31 = (p13 * s00 - p03 * s01) * inv_det

    # Arguments: P[a,b], P[a,0], P[a,1], P[0,b], P[1,b], then P's position
    # block, then the gain rows of a and b, then R.
    e = _joseph_element
    return (
        x[0, i] + k00 * nu0 + k01 * nu1,
        x[1, i] + k10 * nu0 + k11 * nu1,
        x[2, i] + k20 * nu0 + k21 * nu1,
        x[3, i] + k30 * nu0 + k31 * nu1,
        e(p00, p00, p01, p00, p01, p00, p01, p11, k00, k01, k00, k01, r00, r01, r11),
        e(p01, p00, p01, p01, p11, p00, p01, p11, k00, k01, k10, k11, r00, r01, r11),
        e(p02, p00, p01, p02, p12, p00, p01, p11, k00, k01, k20, k21, r00, r01, r11),
        e(p03, p00, p01, p03, p13, p00, p01, p11, k00, k01, k30, k31, r00, r01, r11),
        e(p11, p01, p11, p01, p11, p00, p01, p11, k10, k11, k10, k11, r00, r01, r11),
        e(p12, p01, p11, p02, p12, p00, p01, p11, k10, k11, k20, k21, r00, r01, r11),
        e(p13, p01, p11, p03, p13, p00, p01, p11, k10, k11, k30, k31, r00, r01, r11),
        e(p22, p02, p12, p02, p12, p00, p01, p11, k20, k21, k20, k21, r00, r01, r11),
        e(p23, p02, p12, p03, p13, p00, p01, p11, k20, k21, k30, k31, r00, r01, r11),
        e(p33, p03, p13, p03, p13, p00, p01, p11, k30, k31, k30, k31, r00, r01, r11),
    )


@njit(cache=True)
def update(x, P, tracks, z, R, measurements):
    """Joseph-form update of track tracks[k] with measurement measurements[k]."""
    for k in range(tracks.shape[0]):
        i = tracks[k]
        store_one(x, P, i, updated_one(x, P, i, z, R, measurements[k]))
