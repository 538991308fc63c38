"""The tracker's association and life cycle on small scenarios with known truth."""

import numpy as np
import pytest

from edge.tracking import Tracker, TrackerConfig

pytestmark = pytest.mark.unit

SIGMA = 3.0


def measure(rng, positions, sigma=SIGMA):
    z = positions + rng.normal(0, sigma, size=positions.shape)
    R = np.tile(np.eye(2) * sigma**2, (len(z), 1, 1))
    return z, R


def nearest_track(tracks, position):
    distances = np.linalg.norm(tracks.x[:, :2] - position, axis=1)
    k = int(np.argmin(distances))
    return k, distances[k]


def test_a_single_target_is_confirmed_and_followed():
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerConfig(process_noise=0.05))
    velocity = np.array([3.0, -1.5])
    for k in range(15):
        truth = np.array([[100.0, 200.0]]) + velocity * k
        tracks = tracker.update(float(k), *measure(rng, truth))
    assert tracks.confirmed.sum() == 1
    k, distance = nearest_track(tracks, truth[0])
    assert tracks.confirmed[k] and distance < 3 * SIGMA
    assert np.allclose(tracks.x[k, 2:], velocity, atol=1.5)
    assert tracks.hits[k] == 15 and tracks.misses[k] == 0
    assert tracks.sensors(k) == ["default"]


def test_crossing_targets_keep_their_ids():
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerConfig(process_noise=0.05))
    start = np.array([[0.0, 0.0], [200.0, 0.0]])
    velocity = np.array([[5.0, 1.0], [-5.0, 1.0]])  # they cross at scan 20
    ids_before = ids_after = None
    for k in range(41):
        truth = start + velocity * k
        tracks = tracker.update(float(k), *measure(rng, truth))
        if k in (12, 40):
            ids = [tracks.ids[nearest_track(tracks, p)[0]] for p in truth]
            assert all(tracks.confirmed[np.searchsorted(tracks.ids, i)] for i in ids)
            if k == 12:
                ids_before = ids
            else:
                ids_after = ids
    assert ids_before == ids_after
    assert tracks.confirmed.sum() == 2


def test_targets_in_dense_clutter_are_tracked_without_false_tracks():
    rng = np.random.default_rng(2)
    side = 2000.0
    clutter_per_scan = 100
    config = TrackerConfig(
        process_noise=0.05, detection_probability=0.8, clutter_density=clutter_per_scan / side**2
    )
    tracker = Tracker(config)
    start = rng.uniform(300, 1700, size=(10, 2))
    velocity = rng.normal(0, 4, size=(10, 2))
    false_confirmed = []
    for k in range(40):
        truth = start + velocity * k
        detected = truth[rng.random(len(truth)) < 0.8]
        clutter = rng.uniform(0, side, size=(rng.poisson(clutter_per_scan), 2))
        z, R = measure(rng, detected)
        z = np.vstack([z, clutter])
        R = np.tile(np.eye(2) * SIGMA**2, (len(z), 1, 1))
        tracks = tracker.update(float(k), z, R)
        if k >= 15:
            confirmed = tracks.x[tracks.confirmed, :2]
            for p in truth:
                assert np.min(np.linalg.norm(confirmed - p, axis=1)) < 15
            near_truth = np.min(np.linalg.norm(confirmed[:, None] - truth[None], axis=2), axis=1)
            false_confirmed.append(int(np.sum(near_truth > 30)))
    assert np.mean(false_confirmed) < 0.2


def test_coasting_then_deletion_and_ids_never_reused():
    rng = np.random.default_rng(3)
    config = TrackerConfig(process_noise=0.05, detection_probability=0.9,
                           confirmed_delete_drop=7.0, max_coast_time_s=5.0)
    tracker = Tracker(config)
    for k in range(10):
        tracks = tracker.update(float(k), *measure(rng, np.array([[50.0 + 2 * k, 0.0]])))
    first_id = tracks.ids[tracks.confirmed][0]
    # The target hides: the track coasts on its prediction for as many misses
    # as its score allows (three at pd = 0.9 with a drop of 7).
    for k in range(10, 13):
        tracks = tracker.update(float(k), np.empty((0, 2)), np.empty((0, 2, 2)))
        assert first_id in tracks.ids
        k_first = int(np.flatnonzero(tracks.ids == first_id)[0])
        assert tracks.x[k_first, 0] == pytest.approx(50.0 + 2 * k, abs=10)
        assert tracks.misses[k_first] == k - 9
    for k in range(13, 30):
        tracks = tracker.update(float(k), np.empty((0, 2)), np.empty((0, 2, 2)))
    assert len(tracks) == 0
    assert tracker.counters.tracks_deleted >= 1
    # The target returns: a new track with a new id.
    for k in range(30, 40):
        tracks = tracker.update(float(k), *measure(rng, np.array([[50.0 + 2 * k, 0.0]])))
    assert tracks.confirmed.sum() == 1
    assert tracks.ids[tracks.confirmed][0] > first_id


def test_several_sensors_feed_one_track_in_time_order():
    rng = np.random.default_rng(4)
    tracker = Tracker(TrackerConfig(process_noise=0.05))
    for k in range(20):
        t = k * 0.5
        truth = np.array([[10.0 + t, 20.0]])
        sensor = "mast" if k % 2 else "drone-1"
        tracks = tracker.update(t, *measure(rng, truth), sensor=sensor)
    assert tracks.confirmed.sum() == 1
    k = int(np.flatnonzero(tracks.confirmed)[0])
    assert sorted(tracks.sensors(k)) == ["drone-1", "mast"]
    assert tracker.counters.by_sensor == {"drone-1": 10, "mast": 10}
    # A scan older than the tracker's clock is refused and counted.
    before = tracker.tracks()
    after = tracker.update(1.0, *measure(rng, np.array([[11.0, 20.0]])), sensor="mast")
    assert tracker.counters.rejected_stale_scans == 1
    assert tracker.counters.rejected_stale_measurements == 1
    assert np.array_equal(before.x, after.x) and np.array_equal(before.ids, after.ids)


@pytest.mark.parametrize("association", ["jpda", "gnn"])
def test_each_measurement_names_the_track_that_used_it(association):
    # Four walkers 4 m apart in clutter. Each scan, the detection of each walker names the
    # confirmed track that follows that walker (the one nearest it after the scan), a
    # clutter point never names a confirmed track, and no track is named twice.
    rng = np.random.default_rng(5)
    sigma = 0.7
    tracker = Tracker(TrackerConfig(association=association, detection_probability=0.9,
                                    clutter_density=1e-4))  # fmt: skip
    start = np.array([[0.0, 0.0], [4.0, 0.0], [8.0, 0.0], [12.0, 0.0]])
    velocity = np.array([0.0, 1.3])
    checked = 0
    for k in range(60):
        t = 0.5 * k
        truth = start + velocity * t
        clutter = rng.uniform(-100.0, 100.0, size=(3, 2)) + [300.0, 0.0]
        z = np.vstack([truth + rng.normal(0.0, sigma, truth.shape), clutter])
        tracks = tracker.update(t, z, np.tile(np.eye(2) * sigma**2, (len(z), 1, 1)))
        owners = tracks.measurement_track
        assert owners.shape == (len(z),)
        named = owners[owners >= 0]
        assert len(set(named.tolist())) == len(named), owners
        confirmed_ids = set(tracks.ids[tracks.confirmed].tolist())
        assert not confirmed_ids & set(owners[4:].tolist()), "clutter fed a confirmed track"
        if k >= 10:
            for walker in range(4):
                nearest, _ = nearest_track(tracks, truth[walker])
                if tracks.confirmed[nearest]:
                    assert owners[walker] == tracks.ids[nearest], (k, walker, owners)
                    checked += 1
    assert checked > 150


def test_a_rejected_measurement_is_used_by_no_track():
    tracker = Tracker()
    z = np.array([[0.0, 0.0], [np.nan, 1.0]])
    tracks = tracker.update(0.0, z, np.tile(np.eye(2), (2, 1, 1)))
    assert tracks.measurement_track.tolist() == [tracks.ids[0], -1]
    stale = tracker.update(-1.0, z, np.tile(np.eye(2), (2, 1, 1)))
    assert stale.measurement_track.tolist() == [-1, -1]


# --- measurements their sensor calls clutter ---------------------------------------------

ROCK = np.array([[50.0, -20.0]])


@pytest.mark.parametrize("association", ["jpda", "gnn"])
def test_a_spot_its_sensor_calls_clutter_never_becomes_a_track(association):
    """A warm rock is seen at the same place every scan: flagged clutter-like, it starts
    nothing, however long it is seen; the very same scans unflagged confirm a track."""
    flagged = Tracker(TrackerConfig(process_noise=0.05, association=association))
    unflagged = Tracker(TrackerConfig(process_noise=0.05, association=association))
    rng = np.random.default_rng(7)
    for k in range(60):
        z, R = measure(rng, ROCK, sigma=1.0)
        seen = flagged.update(float(k), z, R, clutter_like=[True])
        plain = unflagged.update(float(k), z, R)
    assert len(seen.ids) == 0 and flagged.counters.tracks_born == 0
    assert flagged.counters.clutter_like_measurements == 60
    assert plain.confirmed.sum() == 1


def test_a_confirmed_track_that_lands_on_clutter_follows_it_but_fades():
    """A walker's track, confirmed, then fed only clutter-like measurements where the walker
    stood (she left unseen; a rock lies there): the measurements still move the track,
    and its score falls scan by scan until it is deleted, as with misses."""
    rng = np.random.default_rng(8)
    config = TrackerConfig(process_noise=0.05)
    tracker = Tracker(config)
    velocity = np.array([1.2, 0.0])
    for k in range(20):
        tracks = tracker.update(float(k), *measure(rng, ROCK + velocity * (k - 20), sigma=1.0))
    assert tracks.confirmed.sum() == 1
    (track_id,) = tracks.ids
    best = float(tracks.score[0])
    alive_scans = 0
    for k in range(20, 200):
        tracks = tracker.update(float(k), *measure(rng, ROCK, sigma=1.0), clutter_like=[True])
        if track_id not in tracks.ids:
            break
        alive_scans += 1
        i = int(np.flatnonzero(tracks.ids == track_id)[0])
        assert tracks.hits[i] > 20 - 1  # the clutter is its measurement, not a miss in state
        assert tracks.score[i] < best
    assert track_id not in tracks.ids  # deleted, and nothing else born on the rock
    assert len(tracks.ids) == 0
    # Deleted when the score has fallen by confirmed_delete_drop at ln(1 - pd) a scan.
    expected = config.confirmed_delete_drop / -np.log(1.0 - config.detection_probability)
    assert alive_scans <= expected + 2


def test_clutter_flags_must_match_the_measurements():
    tracker = Tracker(TrackerConfig())
    with pytest.raises(ValueError, match="clutter_like"):
        tracker.update(0.0, np.zeros((2, 2)), np.tile(np.eye(2), (2, 1, 1)), clutter_like=[True])
