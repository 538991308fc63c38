"""Numba helpers of HQ fusion on one track's (4,) state and (4, 4) covariance.

States are [e, n, ve, vn] in HQ's ENU frame, m and m/s. Every helper writes into
scratch arrays its caller owns, so that the kernels' loops over tracks allocate
nothing.

Motion model: nearly constant velocity, white acceleration of power spectral
density q (m²/s³) per axis, as on the edge. Two tracks are compared and fused
at the later of their two times: the older one is predicted forward. Predicting
the newer one backward would take process noise out of its covariance that it
never had, and could make it indefinite.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, inline="always")
def predict_into(x, P, dt, q, x_out, P_out, scratch):
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
def cholesky(A, n, L):
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
def lower_inverse(L, W):
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
def inverse_spd(A, out, L, W):
    """out = A^-1 for a symmetric positive definite (4, 4) A; False if A is not."""
    if not cholesky(A, 4, L):
        return False
    lower_inverse(L, W)
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
def largest_variance(P, first):
    """Largest eigenvalue of the 2x2 block of P starting at (first, first)."""
    a, b, c = P[first, first], P[first, first + 1], P[first + 1, first + 1]
    half_trace = 0.5 * (a + c)
    half_difference = 0.5 * (a - c)
    return half_trace + math.sqrt(half_difference * half_difference + b * b)
