"""Bad input: refused clearly, counted, and the tracker's state unchanged."""

import numpy as np
import pytest

from edge.tracking import Tracker, TrackerConfig

pytestmark = pytest.mark.unit


@pytest.fixture
def tracker():
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerConfig(process_noise=0.05))
    for k in range(6):
        z = np.array([[0.0, 0.0], [500.0, 500.0]]) + k + rng.normal(0, 1, size=(2, 2))
        tracker.update(float(k), z, np.tile(np.eye(2), (2, 1, 1)))
    return tracker


def state(tracker):
    tracks = tracker.tracks()
    return tracks.ids.copy(), tracks.x.copy(), tracks.P.copy(), tracker.time


def assert_unchanged(before, after):
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "z, R, message",
    [
        (np.zeros((3, 3)), np.zeros((3, 2, 2)), "z must have shape"),
        (np.zeros(4), np.zeros((2, 2, 2)), "z must have shape"),
        (np.zeros((3, 2)), np.zeros((2, 2, 2)), "R must have shape"),
        (np.zeros((3, 2)), np.zeros((3, 2)), "R must have shape"),
    ],
)
def test_mismatched_shapes_raise_and_change_nothing(tracker, z, R, message):
    before = state(tracker)
    with pytest.raises(ValueError, match=message):
        tracker.update(10.0, z, R)
    assert_unchanged(before, state(tracker))


@pytest.mark.parametrize("t", [np.nan, np.inf, -np.inf])
def test_non_finite_time_raises(tracker, t):
    before = state(tracker)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(t, np.zeros((1, 2)), np.eye(2)[None])
    assert_unchanged(before, state(tracker))


def test_time_going_backwards_is_rejected_and_counted(tracker):
    before = state(tracker)
    tracker.update(2.0, np.zeros((4, 2)), np.tile(np.eye(2), (4, 1, 1)))
    assert tracker.counters.rejected_stale_scans == 1
    assert tracker.counters.rejected_stale_measurements == 4
    assert_unchanged(before, state(tracker))


def test_bad_values_are_dropped_one_by_one_and_good_ones_kept(tracker):
    good = np.array([[6.0, 6.0], [506.0, 506.0]])
    z = np.vstack([good, [[np.nan, 1.0], [np.inf, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])
    R = np.tile(np.eye(2), (7, 1, 1))
    R[4] = [[1.0, 0.0], [0.0, np.nan]]
    R[5] = [[1.0, 2.0], [2.0, 1.0]]  # indefinite
    R[6] = [[1.0, 0.5], [0.1, 1.0]]  # not symmetric
    counters = tracker.counters
    hits_before = tracker.tracks().hits.copy()
    tracks = tracker.update(6.0, z, R)
    assert counters.rejected_non_finite == 3
    assert counters.rejected_covariance == 2
    assert np.all(tracks.hits[: len(hits_before)] == hits_before + 1)
    assert len(tracks) == len(hits_before)  # nothing was born from the bad rows
    assert np.all(np.isfinite(tracks.x)) and np.all(np.isfinite(tracks.P))


def test_empty_scan_coasts_every_track(tracker):
    before = tracker.tracks()
    tracks = tracker.update(6.0, np.empty((0, 2)), np.empty((0, 2, 2)))
    assert np.array_equal(tracks.ids, before.ids)
    assert np.all(tracks.misses == before.misses + 1)
    assert np.allclose(tracks.x[:, :2], before.x[:, :2] + before.x[:, 2:], atol=1e-9)


def test_one_hundred_thousand_measurements_in_one_scan(tracker):
    rng = np.random.default_rng(1)
    n = 100_000
    z = rng.uniform(-50_000, 50_000, size=(n, 2))
    R = np.tile(np.eye(2) * 4.0, (n, 1, 1))
    tracks = tracker.update(6.0, z, R)
    assert tracker.counters.tracks_born >= n - 10  # a few may fall in an existing gate
    assert len(np.unique(tracks.ids)) == len(tracks)
    assert len(tracks) >= n


def test_config_out_of_range_is_refused():
    with pytest.raises(ValueError, match="detection_probability"):
        TrackerConfig(detection_probability=1.0)
    both = (r"(?s)process_noise\n  Input should be greater than 0"
            r".*clutter_density\n  Input should be greater than 0")
    with pytest.raises(ValueError, match=both):
        TrackerConfig(process_noise=0.0, clutter_density=-1.0)
