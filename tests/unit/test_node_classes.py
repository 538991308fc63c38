"""The node's class of each track: a decayed vote of the detections that fed it."""

from __future__ import annotations

import numpy as np
import pytest

from edge.node import CLASS_HALF_LIFE_S, ClassVotes
from edge.tracking.table import Tracks

pytestmark = pytest.mark.unit

R = np.eye(2)[None] * 1.0  # 1 m² per detection


def tracks(*states) -> Tracks:
    """Confirmed tracks with ids 1, 2, ... at states (e, n, ve, vn), 1 m and 0.1 m/s sure."""
    n = len(states)
    P = np.tile(np.diag([1.0, 1.0, 0.01, 0.01]), (n, 1, 1))
    return Tracks(ids=np.arange(1, n + 1), x=np.array(states, float).reshape(n, 4), P=P,
                  confirmed=np.ones(n, bool), hits=np.full(n, 5), misses=np.zeros(n, int),
                  age=np.full(n, 5.0), last_update=np.zeros(n), score=np.full(n, 10.0),
                  sensor_mask=np.ones(n, np.int64), sensor_names=("thermal",))  # fmt: skip


def vote(votes: ClassVotes, t: float, snapshot: Tracks, detections) -> dict[int, str]:
    """detections: [(e, n, class)]; returns the classes after the vote."""
    z = np.array([d[:2] for d in detections], float).reshape(-1, 2)
    votes.vote(t, snapshot, z, np.repeat(R, len(z), axis=0), [d[2] for d in detections])
    return votes.classes()


def test_a_track_takes_the_class_most_of_its_detections_had():
    votes, walker = ClassVotes(), tracks((0.0, 0.0, 1.0, 0.0))
    # A walker whose blob merges now and then with a neighbour's, and reads as an animal.
    for k, label in enumerate(["person", "person", "animal", "person", "animal", "person"]):
        classes = vote(votes, 0.5 * k, walker, [(0.3, -0.2, label)])
    assert classes == {1: "person"}, "the last detection (animal) does not decide"


def test_unknown_never_overwrites_a_known_class():
    votes, track = ClassVotes(), tracks((0.0, 0.0, 0.0, 0.0))
    vote(votes, 0.0, track, [(0.0, 0.0, "unknown")])
    assert votes.classes() == {}, "no known detection yet: no class"
    vote(votes, 1.0, track, [(0.0, 0.0, "animal")])
    for k in range(50):
        classes = vote(votes, 2.0 + k, track, [(0.0, 0.0, "unknown")])
    assert classes == {1: "animal"}


def test_old_votes_fade_so_that_a_class_can_change():
    votes, track = ClassVotes(), tracks((0.0, 0.0, 0.0, 0.0))
    for k in range(5):
        vote(votes, 0.1 * k, track, [(0.0, 0.0, "person")])
    # Three half-lives later, the five person votes weigh less than 1; two animal votes win.
    later = 3.0 * CLASS_HALF_LIFE_S
    vote(votes, later, track, [(0.0, 0.0, "animal")])
    assert vote(votes, later + 0.1, track, [(0.0, 0.0, "animal")]) == {1: "animal"}


def test_each_detection_votes_for_the_nearest_track_within_its_gate():
    votes = ClassVotes()
    snapshot = tracks((0.0, 0.0, 0.0, 0.0), (30.0, 0.0, 0.0, 0.0))
    classes = vote(votes, 0.0, snapshot, [(29.0, 0.5, "animal"), (0.5, 0.0, "person"),
                                          (200.0, 0.0, "vehicle")])  # fmt: skip
    assert classes == {1: "person", 2: "animal"}, "the far vehicle witnesses no track"


def test_a_track_faster_than_anything_on_foot_is_a_vehicle():
    # A pickup whose hot bonnet alone stands out is an animal by its size, not by its speed.
    votes, pickup = ClassVotes(), tracks((0.0, 0.0, 14.0, 14.0))
    for k in range(3):
        classes = vote(votes, 0.2 * k, pickup, [(0.0, 0.0, "animal")])
    assert classes == {1: "vehicle"}
    # A walker's track, unsure of its speed just after birth, keeps its detections' class.
    votes, unsure = ClassVotes(), tracks((0.0, 0.0, 6.0, 0.0))
    unsure.P[0, 2:, 2:] = np.eye(2) * 25.0  # 5 m/s per axis
    assert vote(votes, 0.0, unsure, [(0.0, 0.0, "person")]) == {1: "person"}


def test_the_tally_of_a_deleted_track_is_dropped():
    votes = ClassVotes()
    vote(votes, 0.0, tracks((0.0, 0.0, 0.0, 0.0), (50.0, 0.0, 0.0, 0.0)),
         [(0.0, 0.0, "person"), (50.0, 0.0, "animal")])  # fmt: skip
    survivor = tracks((0.0, 0.0, 0.0, 0.0))  # id 1 only
    assert vote(votes, 1.0, survivor, []) == {1: "person"}
    assert set(votes.tallies) == {1}
