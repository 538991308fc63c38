"""The clutter map: warm ground that keeps making blobs raises the bar there, finitely."""

import numpy as np
import pytest

from edge.tracking import Tracker, TrackerConfig

pytestmark = pytest.mark.unit

SIGMA = 1.0
FPS = 5.0
SPOT = np.array([45.0, 25.0])  # a warm rock, in the middle of a 10 m cell


def R(n):
    return np.tile(np.eye(2) * SIGMA**2, (n, 1, 1))


def no_map() -> TrackerConfig:
    return TrackerConfig(clutter_max_extra_hits=0)


def sweep_past_the_rock(tracker, rng, passes=5, in_view_s=10.0, period_s=30.0, rate=0.3):
    """The drone's camera passes over the rock every `period_s`, seeing it for `in_view_s`;
    the rock makes a blob in `rate` of the frames it is in view. Returns the time after."""
    frames = np.arange(0.0, passes * period_s, 1.0 / FPS)
    for t in frames:
        in_view = (t % period_s) < in_view_s
        z = SPOT[None] + rng.normal(0.0, SIGMA, (1, 2)) if in_view and rng.random() < rate \
            else np.empty((0, 2))  # fmt: skip
        tracker.update(t, z, R(len(z)))
    return frames[-1] + 1.0 / FPS


def test_a_warm_rock_seen_pass_after_pass_is_confirmed_once_at_most():
    confirmed = {}
    for name, config in (("map", TrackerConfig()), ("no map", no_map())):
        tracker = Tracker(config)
        sweep_past_the_rock(tracker, np.random.default_rng(1))
        confirmed[name] = tracker.counters.tracks_confirmed
    # Without the map each pass's track is confirmed after two hits, and dies in the gap.
    assert confirmed["no map"] == 5
    assert confirmed["map"] <= 1


def test_a_person_who_stands_still_at_the_rock_is_still_confirmed():
    # After the rock's passes the bar there is at its highest: 20 hits beyond the first.
    tracker = Tracker()
    rng = np.random.default_rng(2)
    t = sweep_past_the_rock(tracker, rng)
    assert tracker.clutter_extra_hits(SPOT[None])[0] == 20
    # People stranded by the rock, in view and still: seen in half the frames.
    hits = 0
    for k in range(200):
        seen = rng.random() < 0.5
        z = SPOT[None] + [3.0, 0.0] + rng.normal(0.0, SIGMA, (1, 2)) if seen else np.empty((0, 2))
        hits += seen
        tracks = tracker.update(t + k / FPS, z, R(len(z)))
        if tracks.confirmed.any():
            break
    assert tracks.confirmed.any(), "a stationary person is never unconfirmable"
    assert hits == 21  # the first hit and the 20 the rock's history asks for


def test_a_walker_past_the_rock_is_confirmed_as_soon_as_elsewhere_and_keeps_it_when_stopping():
    # A walker crosses the rock's cell at 1.4 m/s and stops for good beside the rock
    # (inside its cell): confirmed as soon as without a map, and confirmed to the end.
    first_confirmed = {}
    for name, config in (("map", TrackerConfig()), ("no map", no_map())):
        tracker = Tracker(config)
        rng = np.random.default_rng(3)
        t0 = sweep_past_the_rock(tracker, rng)
        start = SPOT + [-30.0, 2.0]
        stop_at = 30.0 / 1.4
        first_confirmed[name] = None
        for k in range(int(90 * FPS)):
            dt = k / FPS
            where = start + [1.4 * min(dt, stop_at), 0.0]
            z = where[None] + rng.normal(0.0, SIGMA, (1, 2)) if rng.random() < 0.5 \
                else np.empty((0, 2))  # fmt: skip
            tracks = tracker.update(t0 + dt, z, R(len(z)))
            near = np.linalg.norm(tracks.x[:, :2] - where, axis=1) < 5.0
            if first_confirmed[name] is None and (tracks.confirmed & near).any():
                first_confirmed[name] = dt
                walker = int(tracks.ids[tracks.confirmed & near][0])
        assert walker in tracks.ids[tracks.confirmed], name
    assert first_confirmed["map"] == first_confirmed["no map"] < 2.0


def test_a_walkers_own_detections_leave_no_clutter_behind_a_standing_persons_do():
    walking, standing = Tracker(), Tracker()
    rng = np.random.default_rng(4)
    path = []
    for k in range(300):
        where = np.array([5.0 + 1.4 * k / FPS, 5.0])
        path.append(where)
        walking.update(k / FPS, where[None] + rng.normal(0.0, 0.3, (1, 2)), R(1) * 0.09)
        standing.update(k / FPS, path[0][None] + rng.normal(0.0, 0.3, (1, 2)), R(1) * 0.09)
    # Beyond the first cells (where it was still tentative), no cell of the walker's path
    # holds enough for an extra hit; the cell of the one who stands is full.
    assert np.all(walking.clutter_extra_hits(np.array(path[40:])) == 0)
    assert standing.clutter_extra_hits(path[0][None])[0] == 20
