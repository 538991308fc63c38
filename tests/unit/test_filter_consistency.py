"""Filter consistency: NEES and NIS inside their 95% chi-square bounds.

Many independent targets follow the exact NCV model; a filter with the same
model must then be consistent: the normalised estimation error squared
(NEES, 4 dof) and the normalised innovation squared (NIS, 2 dof), averaged
over the targets, lie inside the two-sided 95% interval of chi-square over
the number of targets at (nearly) every time step.
"""

import numpy as np
import pytest
from scipy.stats import chi2

from bench.tracking.scenarios import process_noise_covariance
from edge.tracking import Tracker, TrackerConfig, kalman

pytestmark = pytest.mark.unit

Q_PSD = 0.5
N_TARGETS = 400
N_STEPS = 60


def simulate_truth(rng, dt):
    chol = np.linalg.cholesky(process_noise_covariance(Q_PSD, dt))
    x = np.zeros((N_TARGETS, 4))
    x[:, 2:] = rng.normal(0, 5, size=(N_TARGETS, 2))
    for _ in range(N_STEPS):
        noise = np.einsum("ij,taj->tai", chol, rng.standard_normal((N_TARGETS, 2, 2)))
        x[:, :2] += dt * x[:, 2:] + noise[:, :, 0]
        x[:, 2:] += noise[:, :, 1]
        yield x.copy()


def fraction_inside(averages, dof):
    lo, hi = chi2.ppf([0.025, 0.975], dof * N_TARGETS) / N_TARGETS
    averages = np.asarray(averages)
    return np.mean((averages >= lo) & (averages <= hi))


def test_kernels_are_consistent_with_varying_dt_and_measurement_noise():
    rng = np.random.default_rng(11)
    dt = 0.7
    x = np.zeros((4, N_TARGETS))
    P = np.zeros((4, 4, N_TARGETS))
    everyone = np.arange(N_TARGETS, dtype=np.int64)
    nees, nis = [], []
    for step, truth in enumerate(simulate_truth(rng, dt)):
        sigmas = rng.uniform(1.0, 20.0, size=N_TARGETS)
        R = np.zeros((N_TARGETS, 2, 2))
        R[:, 0, 0] = R[:, 1, 1] = sigmas**2
        z = truth[:, :2] + rng.normal(size=(N_TARGETS, 2)) * sigmas[:, None]
        if step == 0:
            x[:2] = z.T
            x[2:] = 0.0
            P[:] = 0.0
            P[0, 0] = P[1, 1] = sigmas**2
            P[2, 2] = P[3, 3] = 25.0
            continue
        kalman.predict(x, P, np.full(N_TARGETS, dt), Q_PSD, N_TARGETS)
        S = P[:2, :2].transpose(2, 0, 1) + R
        nu = z - x[:2].T
        nis.append(np.mean(np.einsum("ti,tij,tj->t", nu, np.linalg.inv(S), nu)))
        kalman.update(x, P, everyone, z, R, everyone)
        err = truth - x.T
        Pt = P.transpose(2, 0, 1)
        nees.append(np.mean(np.einsum("ti,tij,tj->t", err, np.linalg.inv(Pt), err)))
    assert fraction_inside(nees, 4) >= 0.9
    assert fraction_inside(nis, 2) >= 0.9
    # And no systematic bias: the grand means sit at the degrees of freedom.
    assert np.mean(nees) == pytest.approx(4.0, rel=0.05)
    assert np.mean(nis) == pytest.approx(2.0, rel=0.05)


def test_tracker_estimates_are_consistent_for_well_separated_targets():
    rng = np.random.default_rng(12)
    dt = 1.0
    sigma = 4.0
    tracker = Tracker(TrackerConfig(process_noise=Q_PSD, detection_probability=0.99))
    spacing = 1000.0  # far apart: association is certain, only the filter is tested
    offset = np.stack(np.meshgrid(np.arange(20), np.arange(20)), -1).reshape(-1, 2) * spacing
    nees = []
    for step, truth in enumerate(simulate_truth(rng, dt)):
        positions = truth[:, :2] + offset
        z = positions + rng.normal(0, sigma, size=positions.shape)
        R = np.tile(np.eye(2) * sigma**2, (N_TARGETS, 1, 1))
        tracks = tracker.update(step * dt, z, R)
        if step < 10:
            continue
        x, P = tracks.x[tracks.confirmed], tracks.P[tracks.confirmed]
        assert len(x) == N_TARGETS
        # Tracks are born in measurement order, so match them by position.
        nearest = np.argmin(np.linalg.norm(x[:, None, :2] - positions[None], axis=2), axis=1)
        assert len(np.unique(nearest)) == N_TARGETS
        err = np.concatenate([positions[nearest], truth[nearest, 2:]], axis=1) - x
        nees.append(np.mean(np.einsum("ti,tij,tj->t", err, np.linalg.inv(P), err)))
    assert fraction_inside(nees, 4) >= 0.9
