"""JPDA marginals against brute-force enumeration; the mixture update against its definition."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.tracking import Tracker, TrackerConfig, kalman
from edge.tracking.assign import cluster_labels
from edge.tracking.jpda import marginal_probabilities, mixture_update

pytestmark = pytest.mark.unit

MISS_LLR = float(np.log(0.25))


def brute_force_marginals(pair_track, pair_meas, pair_llr, n_tracks):
    """Sum the weights of every feasible joint event, written from the definition; and
    the pairs of the heaviest event (the most probable joint assignment)."""
    options = [[None] + [k for k in range(len(pair_track)) if pair_track[k] == a]
               for a in range(n_tracks)]  # fmt: skip
    pair_weight = np.zeros(len(pair_track))
    miss_weight = np.zeros(n_tracks)
    total = 0.0
    best_weight, best_event = -1.0, ()
    for event in itertools.product(*options):
        taken = [pair_meas[k] for k in event if k is not None]
        if len(taken) != len(set(taken)):
            continue
        w = np.exp(sum(MISS_LLR if k is None else pair_llr[k] for k in event))
        total += w
        if w > best_weight:
            best_weight, best_event = w, event
        for a, k in enumerate(event):
            if k is None:
                miss_weight[a] += w
            else:
                pair_weight[k] += w
    in_best = np.zeros(len(pair_track), bool)
    in_best[[k for k in best_event if k is not None]] = True
    return pair_weight / total, miss_weight / total, in_best


@settings(max_examples=150, deadline=None)
@given(
    n_tracks=st.integers(1, 4),
    n_meas=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)
def test_marginals_equal_brute_force_enumeration(n_tracks, n_meas, seed):
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in range(n_tracks) for b in range(n_meas) if rng.random() < 0.6]
    if not pairs:
        return
    pair_track = np.array([a for a, _ in pairs], np.int64)
    pair_meas = np.array([b for _, b in pairs], np.int64)
    pair_llr = rng.normal(0, 3, size=len(pairs))
    labels = cluster_labels(pair_track, pair_meas, n_tracks, n_meas)
    beta_pair, beta_miss, in_best_event, too_large = marginal_probabilities(
        pair_track, pair_meas, pair_llr, MISS_LLR, labels, n_tracks, n_meas, 10**6
    )
    expected_pair, expected_miss, expected_best = brute_force_marginals(
        pair_track, pair_meas, pair_llr, n_tracks
    )
    gated = np.zeros(n_tracks, bool)
    gated[pair_track] = True
    assert not too_large.any()
    assert np.allclose(beta_pair, expected_pair, rtol=1e-10, atol=1e-12)
    assert np.allclose(beta_miss[gated], expected_miss[gated], rtol=1e-10, atol=1e-12)
    # A measurement's probabilities over tracks never exceed one.
    assert np.all(np.bincount(pair_meas, weights=beta_pair) <= 1 + 1e-12)
    # The one hard answer is the most probable joint event: no measurement used twice.
    assert np.array_equal(in_best_event, expected_best)
    assert len(set(pair_meas[in_best_event])) == in_best_event.sum()


def test_clusters_over_the_event_bound_are_flagged_not_solved():
    n = 6  # six tracks all gating six measurements: 13,327 events
    pair_track = np.repeat(np.arange(n), n).astype(np.int64)
    pair_meas = np.tile(np.arange(n), n).astype(np.int64)
    pair_llr = np.zeros(n * n)
    labels = cluster_labels(pair_track, pair_meas, n, n)
    *_, too_large = marginal_probabilities(
        pair_track, pair_meas, pair_llr, MISS_LLR, labels, n, n, 1000
    )
    assert too_large.all()


def test_mixture_update_is_the_moment_matched_mixture():
    rng = np.random.default_rng(7)
    x = np.array([[10.0], [20.0], [1.0], [-1.0]])
    A = rng.normal(size=(4, 4))
    P = (A @ A.T + 4 * np.eye(4))[:, :, None].copy()
    z = np.array([[12.0, 19.0], [7.0, 24.0]])
    R = np.stack([np.eye(2) * 3.0, np.array([[5.0, 1.0], [1.0, 2.0]])])
    betas = np.array([0.5, 0.3])
    beta_miss = np.array([0.2])

    components = [(x[:, 0].copy(), P[:, :, 0].copy(), beta_miss[0])]
    for j in range(2):
        xj, Pj = x.copy(), P.copy()
        kalman.update(xj, Pj, np.array([0]), z, R, np.array([j]))
        components.append((xj[:, 0], Pj[:, :, 0], betas[j]))
    mean = sum(w * m for m, _, w in components)
    cov = sum(w * (C + np.outer(m - mean, m - mean)) for m, C, w in components)

    mixture_update(x, P, np.array([0]), np.array([0, 0]), np.array([0, 1]), betas, beta_miss,
                   z, R, np.array([0, 1]))  # fmt: skip
    assert np.allclose(x[:, 0], mean, rtol=1e-12)
    assert np.allclose(P[:, :, 0], cov, rtol=1e-10)


@pytest.mark.parametrize("association", ["jpda", "gnn"])
def test_both_associations_track_targets_in_clutter(association):
    rng = np.random.default_rng(9)
    side, n_clutter, sigma = 1500.0, 60, 8.0
    config = TrackerConfig(
        detection_probability=0.8, clutter_density=n_clutter / side**2, association=association
    )
    tracker = Tracker(config)
    start = rng.uniform(300, 1200, size=(8, 2))
    velocity = rng.normal(0, 4, size=(8, 2))
    errors = []
    for k in range(30):
        truth = start + velocity * k
        detected = truth[rng.random(8) < 0.8]
        z = np.vstack([detected + rng.normal(0, sigma, size=detected.shape),
                       rng.uniform(0, side, size=(rng.poisson(n_clutter), 2))])  # fmt: skip
        tracks = tracker.update(float(k), z, np.tile(np.eye(2) * sigma**2, (len(z), 1, 1)))
        if k >= 15:
            confirmed = tracks.x[tracks.confirmed, :2]
            distance = np.linalg.norm(confirmed[:, None] - truth[None], axis=2)
            errors.append(np.min(distance, axis=0))
    errors = np.array(errors)
    assert np.mean(errors < 25) > 0.95
    assert np.median(errors) < sigma
