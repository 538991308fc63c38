"""The batched kernels against filterpy's KalmanFilter, step by step."""

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from edge.tracking import kalman

pytestmark = pytest.mark.unit


def reference_filter(x0, P0):
    kf = KalmanFilter(dim_x=4, dim_z=2)
    kf.x = x0.copy()
    kf.P = P0.copy()
    kf.H = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    return kf


def set_ncv_model(kf, dt, q):
    kf.F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    per_axis = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    Q = np.zeros((4, 4))
    Q[np.ix_([0, 2], [0, 2])] = per_axis
    Q[np.ix_([1, 3], [1, 3])] = per_axis
    kf.Q = Q


def random_spd(rng, size, scale):
    A = rng.normal(size=(size, size)) * scale
    return A @ A.T + np.eye(size) * scale**2 * 0.1


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("n_tracks", [1, 7, 64])
def test_kernels_match_filterpy_over_random_sequences(n_tracks):
    rng = np.random.default_rng(n_tracks)
    q = 0.37
    x = np.zeros((4, n_tracks))
    P = np.zeros((4, 4, n_tracks))
    references = []
    for i in range(n_tracks):
        x0 = rng.normal(size=4) * [100, 100, 5, 5]
        P0 = random_spd(rng, 4, 3.0)
        x[:, i] = x0
        P[:, :, i] = P0
        references.append(reference_filter(x0, P0))

    for _ in range(40):
        dt = rng.uniform(0.01, 4.0, size=n_tracks)
        kalman.predict(x, P, dt, q, n_tracks)
        for i, kf in enumerate(references):
            set_ncv_model(kf, dt[i], q)
            kf.predict()

        # A random subset of tracks is updated, each with its own R.
        updated = np.flatnonzero(rng.random(n_tracks) < 0.7).astype(np.int64)
        z = rng.normal(size=(n_tracks, 2)) * 20 + x[:2].T
        R = np.stack([random_spd(rng, 2, rng.uniform(0.5, 30)) for _ in range(n_tracks)])
        order = rng.permutation(n_tracks).astype(np.int64)  # measurement j feeds track order[j]
        meas_of = np.empty(n_tracks, np.int64)
        meas_of[order] = np.arange(n_tracks)
        kalman.update(x, P, updated, z[order], R[order], meas_of[updated])
        for i in updated:
            references[i].update(z[i], R=R[i])

        for i, kf in enumerate(references):
            assert relative_error(x[:, i], kf.x) < 1e-9
            assert relative_error(P[:, :, i], kf.P) < 1e-9


def test_update_keeps_covariance_symmetric_positive_definite():
    rng = np.random.default_rng(3)
    n = 200
    x = np.zeros((4, n))
    P = np.stack([random_spd(rng, 4, 1e3) for _ in range(n)], axis=2).copy()
    tracks = np.arange(n, dtype=np.int64)
    z = rng.normal(size=(n, 2))
    R = np.tile(np.eye(2) * 1e-6, (n, 1, 1))  # a very precise sensor: worst case for rounding
    for _ in range(20):
        kalman.predict(x, P, np.full(n, 0.5), 0.05, n)
        kalman.update(x, P, tracks, z, R, tracks)
    for i in range(n):
        assert np.array_equal(P[:, :, i], P[:, :, i].T)
        assert np.all(np.linalg.eigvalsh(P[:, :, i]) > 0)


def test_innovation_matches_direct_computation():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3)) * 10
    P = np.stack([random_spd(rng, 4, 2.0) for _ in range(3)], axis=2).copy()
    z = rng.normal(size=(2, 2)) * 10
    R = np.stack([random_spd(rng, 2, 1.5) for _ in range(2)])
    nu0, nu1, s00, s01, s11, d2, log_det = kalman.innovation(x, P, 2, z, R, 1)
    nu = z[1] - x[:2, 2]
    S = P[:2, :2, 2] + R[1]
    assert np.allclose([nu0, nu1], nu)
    assert np.allclose([[s00, s01], [s01, s11]], S)
    assert d2 == pytest.approx(nu @ np.linalg.solve(S, nu), rel=1e-12)
    assert log_det == pytest.approx(np.log(np.linalg.det(S)), rel=1e-12)
