"""Class-bounded gating, speed and coasting: what a person, a camel or a vehicle can do."""

import numpy as np
import pytest
from scipy.stats import chi2

from edge.config import ClassLimits, ClassLimitsTable
from edge.tracking import Tracker, TrackerConfig
from edge.tracking.bounds import MAX_ACCELERATION, class_code, limits_table, possible
from edge.tracking.table import CLASS, N_FLOATS, N_INTS, T_UPDATE, VAR_MEAS

pytestmark = pytest.mark.unit

SIGMA = 0.5
DT = 0.2


def R(n=1):
    return np.tile(np.eye(2) * SIGMA**2, (n, 1, 1))


def walk(tracker, start, velocity, t0, t1, rng, target_class=None):
    """One detection per scan of a target moving from `start` at `velocity`, t0..t1."""
    tracks = None
    for t in np.arange(t0, t1, DT):
        truth = np.asarray(start) + np.asarray(velocity) * t
        tracks = tracker.update(t, truth[None] + rng.normal(0.0, SIGMA, (1, 2)), R())
        if target_class is not None:
            tracker.set_classes({int(i): target_class for i in tracks.ids})
    return tracks


def mahalanobis_squared(tracks, k, z):
    offset = z - tracks.x[k, :2]
    return float(offset @ np.linalg.solve(tracks.P[k, :2, :2] + R()[0], offset))


@pytest.mark.parametrize("target_class, jumps", [("person", False), ("unknown", True)])
def test_a_detection_beyond_a_persons_reach_starts_a_new_track(target_class, jumps):
    # A walker tracked for 10 s, then unseen for 8 s. The process noise is wide, so the
    # filter's own gate after 8 s reaches far; a detection 70 m from where the walker was
    # last seen is inside that gate. No person covers 70 m in 8 s (7 m/s at most): for a
    # person track it is a new track; a track of unknown class (40 m/s) may take it.
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerConfig(process_noise=2.0, detection_probability=0.9))
    velocity = np.array([1.4, 0.0])
    before = walk(tracker, (0.0, 0.0), velocity, 0.0, 10.0, rng, target_class)
    (walker,) = before.ids
    last_seen = before.x[0, :2]
    t = 18.0
    z = last_seen + np.array([70.0, 0.0])
    predicted = tracker.update(t - 0.01, np.empty((0, 2)), np.empty((0, 2, 2)))
    gate = chi2.ppf(tracker.config.gate_probability, df=2)
    assert mahalanobis_squared(predicted, 0, z) < gate, "the statistical gate takes it"
    after = tracker.update(t, z[None], R())
    (owner,) = after.measurement_track
    assert (owner == walker) == jumps
    if not jumps:
        k = int(np.flatnonzero(after.ids == walker)[0])
        assert np.hypot(*after.x[k, 2:]) < 2.0, "the walker's velocity did not jump"


def test_a_detection_needing_an_impossible_acceleration_is_not_the_tracks():
    # One track, measured 0.2 s ago, whose update with the detection 20 m east would
    # swing its velocity by about 14 m/s (its position and velocity errors are strongly
    # correlated). The detection is within reach (the last position is poorly known);
    # only the acceleration can refuse it: a person (3 m/s²) cannot, a class allowed
    # 100 m/s² can. The acceleration margin is 3 sigma of the velocity (1 m/s).
    x = np.array([[0.0], [0.0], [1.0], [0.0]])
    P = np.diag([1.0, 1.0, 1.0, 1.0])[:, :, None].copy()
    P[0, 2, 0] = P[2, 0, 0] = 0.9
    floats = np.zeros((N_FLOATS, 1))
    floats[T_UPDATE, 0], floats[VAR_MEAS, 0] = 9.8, 100.0
    ints = np.zeros((N_INTS, 1), np.int64)
    ints[CLASS, 0] = class_code("person")
    z = np.array([[20.0, 0.0]])
    limits = limits_table(ClassLimitsTable())
    d2 = 400.0 / 1.25  # ν' S⁻¹ ν
    args = (x, P, floats, ints, 0, z, R(), 0, d2, 10.0)
    assert not possible(*args, limits)
    limits[class_code("person"), MAX_ACCELERATION] = 100.0
    assert possible(*args, limits)


def test_a_tracks_velocity_never_exceeds_its_class_top_speed():
    # A target moving at 12 m/s whose track is told it is a person (7 m/s at most): the
    # velocity it reports stays within 7 m/s. Told it is a vehicle, it follows at 12 m/s.
    for target_class, top in (("person", 7.0), ("vehicle", 40.0)):
        rng = np.random.default_rng(3)
        tracker = Tracker(TrackerConfig(process_noise=1.0, detection_probability=0.9))
        speeds = []
        for k in range(60):
            t = k * DT
            z = np.array([[12.0 * t, 0.0]]) + rng.normal(0.0, SIGMA, (1, 2))
            tracks = tracker.update(t, z, R())
            tracker.set_classes({int(i): target_class for i in tracks.ids})
            speeds += np.hypot(tracks.x[:, 2], tracks.x[:, 3]).tolist()
        assert max(speeds) <= top + 1e-9, target_class
        if target_class == "vehicle":
            assert speeds[-1] == pytest.approx(12.0, abs=1.0)


def test_a_track_coasts_no_longer_than_its_class_allows():
    limits = ClassLimitsTable(person=ClassLimits(max_speed=7.0, max_acceleration=3.0,
                                                 max_coast_s=4.0))  # fmt: skip
    # Score-based deletion out of the way: only the coasting time ends the track.
    config = TrackerConfig(detection_probability=0.9, confirmed_delete_drop=1e3,
                           class_limits=limits)  # fmt: skip
    survivors = {}
    for target_class in ("person", "unknown"):
        rng = np.random.default_rng(4)
        tracker = Tracker(config)
        seen = walk(tracker, (0.0, 0.0), (1.4, 0.0), 0.0, 5.0, rng, target_class)
        alive = []
        for t in np.arange(5.0, 12.0, DT):
            alive.append((t, len(tracker.update(t, np.empty((0, 2)), np.empty((0, 2, 2))))))
        survivors[target_class] = max(t for t, n in alive if n) - seen.last_update[0]
    assert 4.0 - DT - 1e-6 <= survivors["person"] <= 4.0  # unseen for at most 4 s
    assert survivors["unknown"] > 7.0 - DT  # alive to the end


def test_set_classes_ignores_tracks_that_are_gone_and_reads_back():
    tracker = Tracker()
    tracks = tracker.update(0.0, np.array([[0.0, 0.0], [50.0, 0.0]]), R(2))
    first, second = (int(i) for i in tracks.ids)
    tracker.set_classes({first: "person", 999: "vehicle"})
    assert tracker.classes() == {first: "person", second: "unknown"}
