"""The benchmark scenarios are what their docstring says, and the bound is sane."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.tracking.references import FilterpyLoop, run_reference
from bench.tracking.scenarios import (
    DENSE_200,
    SCENARIOS,
    STONESOUP_50,
    ScenarioSpec,
    generate,
    process_noise_covariance,
)

pytestmark = pytest.mark.unit

# Many scans of a small scenario, for statistics that must hold.
LONG = STONESOUP_50.with_scans(400)


@pytest.fixture(scope="module")
def long_scenario():
    return generate(LONG)


def _same(a, b) -> bool:
    return all(
        np.array_equal(sa.z, sb.z)
        and np.array_equal(sa.R, sb.R)
        and np.array_equal(sa.origin, sb.origin)
        and np.array_equal(sa.truth, sb.truth)
        for sa, sb in zip(a, b, strict=True)
    )


def test_named_specs_are_the_issue_definitions():
    assert set(SCENARIOS) == {"stonesoup-50", "dense-200"}
    s, d = STONESOUP_50, DENSE_200
    assert (s.n_targets, s.n_scans, s.sigma, s.detection_probability, s.clutter_mean) == (
        50, 100, 5.0, 0.9, 20.0,
    )
    assert (d.n_targets, d.n_scans, d.sigma, d.detection_probability, d.clutter_mean) == (
        200, 40, 10.0, 0.75, 200.0,
    )
    for spec in (s, d):
        assert (spec.side, spec.q, spec.dt, spec.velocity_std, spec.seed) == (
            3000.0, 0.05, 1.0, 5.0, 1,
        )


def test_same_seed_same_data_other_seed_other_data():
    spec = DENSE_200.with_scans(5)
    assert _same(generate(spec), generate(spec))
    assert not _same(generate(spec), generate(spec.with_seed(2)))


def test_scaled_keeps_the_density_of_stonesoup_50():
    big = ScenarioSpec.scaled(10_000)
    assert big.clutter_mean == pytest.approx(4_000.0)
    assert big.n_targets / big.area == pytest.approx(50 / 3000.0**2)
    assert big.clutter_density == pytest.approx(STONESOUP_50.clutter_density)
    same = ScenarioSpec.scaled(50, n_scans=STONESOUP_50.n_scans)
    assert _same(generate(same), generate(STONESOUP_50))


def test_scan_layout(long_scenario):
    for k, scan in enumerate(long_scenario.scans[:20]):
        n = scan.n_detections
        assert scan.index == k and scan.time == k * LONG.dt
        assert scan.z.shape == (n, 2) and scan.R.shape == (n, 2, 2)
        assert scan.origin.shape == (n,) and scan.origin.dtype == np.int64
        assert scan.truth.shape == (LONG.n_targets, 4)
        np.testing.assert_array_equal(scan.truth_ids, np.arange(LONG.n_targets))
        np.testing.assert_array_equal(scan.R, np.broadcast_to(np.eye(2) * 25.0, (n, 2, 2)))
        real = scan.origin[scan.origin >= 0]
        assert len(np.unique(real)) == len(real)  # at most one detection per target


def test_initial_state_distribution():
    scan0 = generate(ScenarioSpec.scaled(20_000, n_scans=1)).scans[0]
    side = math.sqrt(20_000 / 50) * 3000.0
    pos, vel = scan0.truth[:, :2], scan0.truth[:, 2:]
    assert np.all(np.abs(pos) <= side / 3)
    assert np.abs(pos).max() > 0.99 * side / 3
    assert vel.std(axis=0) == pytest.approx([5.0, 5.0], rel=0.03)
    assert np.abs(vel.mean(axis=0)).max() < 0.15


def test_clutter_is_poisson_with_the_given_mean_and_uniform(long_scenario):
    counts = np.array([np.sum(s.origin < 0) for s in long_scenario])
    # Poisson: mean and variance both 20; standard error of the mean 0.22.
    assert counts.mean() == pytest.approx(LONG.clutter_mean, abs=1.0)
    assert counts.var() == pytest.approx(LONG.clutter_mean, rel=0.25)
    clutter = np.concatenate([s.z[s.origin < 0] for s in long_scenario])
    assert np.all(np.abs(clutter) <= LONG.side / 2)
    # Uniform on [-1500, 1500]: sd 866 m.
    assert clutter.std(axis=0) == pytest.approx([LONG.side / math.sqrt(12)] * 2, rel=0.03)


def test_detection_fraction_is_pd_and_noise_is_sigma(long_scenario):
    detected = sum(int(np.sum(s.origin >= 0)) for s in long_scenario)
    fraction = detected / (LONG.n_targets * LONG.n_scans)
    assert fraction == pytest.approx(LONG.detection_probability, abs=0.01)  # se 0.002
    errors = np.concatenate(
        [s.z[s.origin >= 0] - s.truth[s.origin[s.origin >= 0], :2] for s in long_scenario]
    )
    assert errors.std(axis=0) == pytest.approx([LONG.sigma] * 2, rel=0.03)
    assert np.abs(errors.mean(axis=0)).max() < 0.15


def test_motion_noise_covariance_matches_q(long_scenario):
    truth = np.stack([s.truth for s in long_scenario])  # (scans, targets, 4)
    dt = LONG.dt
    position_residual = truth[1:, :, :2] - truth[:-1, :, :2] - dt * truth[:-1, :, 2:]
    velocity_increment = truth[1:, :, 2:] - truth[:-1, :, 2:]
    # Pool both axes: samples of the per-axis (position, velocity) noise.
    samples = np.stack([position_residual.ravel(), velocity_increment.ravel()])
    empirical = np.cov(samples)
    expected = process_noise_covariance(LONG.q, dt)
    # ~40,000 samples: relative standard error of each entry about 1%.
    np.testing.assert_allclose(empirical, expected, rtol=0.06)
    # The two axes are independent.
    axis_corr = np.corrcoef(velocity_increment[..., 0].ravel(), velocity_increment[..., 1].ravel())
    assert abs(axis_corr[0, 1]) < 0.03


def test_clairvoyant_error_is_consistent_with_sigma():
    spec = STONESOUP_50.with_scans(40)
    scenario = generate(spec)
    run = run_reference("clairvoyant", spec)
    assert run.finished and run.scans_done == spec.n_scans
    squared = []
    for scan, estimates in zip(scenario, run.estimates, strict=True):
        if scan.index >= 10:
            assert estimates.shape == (spec.n_targets, 2)  # all started by then
            squared.append(np.sum((estimates - scan.truth[:, :2]) ** 2, axis=1) / 2.0)
    rms = math.sqrt(np.mean(squared))  # per axis
    assert 0.3 * spec.sigma < rms < spec.sigma


def test_filterpy_loop_tracks_the_targets():
    spec = STONESOUP_50.with_scans(12)
    scenario = generate(spec)
    loop = FilterpyLoop(spec)
    for scan in scenario:
        loop.step(loop.prepare(scan))
    estimates = loop.estimates()
    truth = scenario.scans[-1].truth[:, :2]
    nearest = np.min(np.linalg.norm(truth[:, None] - estimates[None], axis=2), axis=1)
    assert np.mean(nearest < 15.0) > 0.9
    assert len(estimates) < 1.2 * spec.n_targets
