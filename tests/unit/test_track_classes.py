"""The node's class of each track: a decayed vote of its detections, and its speed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge.track_classes import CLASS_HALF_LIFE_S, ClassVotes
from edge.tracking import Tracker, TrackerConfig
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


def used_by(snapshot: Tracks, owners) -> Tracks:
    """The snapshot as after a scan whose measurements the tracker gave to `owners`."""
    return replace(snapshot, measurement_track=np.array(owners, np.int64))


def vote(votes: ClassVotes, t: float, snapshot: Tracks, detections, owners=None):
    """detections: [(e, n, class)], each used by track `owners[j]` (default: track 1);
    returns the classes after the vote."""
    z = np.array([d[:2] for d in detections], float).reshape(-1, 2)
    owners = [1] * len(detections) if owners is None else owners
    votes.vote(t, used_by(snapshot, owners), z, np.repeat(R, len(z), axis=0),
               [d[2] for d in detections])  # fmt: skip
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


def test_class_probabilities_split_each_vote():
    # One sure vehicle detection and two toss-ups that lean person: by hard labels the
    # person would win two to one; by probabilities the vehicle has 1.85 votes to 1.15.
    votes, track = ClassVotes(), tracks((0.0, 0.0, 0.0, 0.0))
    sure_vehicle = {"person": 0.05, "vehicle": 0.95, "animal": 0.0}
    toss_up = {"person": 0.55, "vehicle": 0.45, "animal": 0.0}
    z = np.zeros((1, 2))
    for t, (label, shares) in enumerate([("vehicle", sure_vehicle), ("person", toss_up),
                                         ("person", toss_up)]):
        votes.vote(0.001 * t, used_by(track, [1]), z, R, [label], [shares])  # no time to fade
    assert votes.classes() == {1: "vehicle"}
    assert votes.tallies[1]["person"] == pytest.approx(1.15, abs=0.01)


def test_a_detection_without_probabilities_votes_its_label():
    votes, track = ClassVotes(), tracks((0.0, 0.0, 0.0, 0.0))
    z = np.zeros((2, 2))
    votes.vote(0.0, used_by(track, [1, 1]), z, np.repeat(R, 2, axis=0), ["animal", "person"],
               [None, {"person": 0.3, "vehicle": 0.1, "animal": 0.6}])
    assert votes.tallies[1] == pytest.approx({"animal": 1.6, "person": 0.3, "vehicle": 0.1})


def test_old_votes_fade_so_that_a_class_can_change():
    votes, track = ClassVotes(), tracks((0.0, 0.0, 0.0, 0.0))
    for k in range(5):
        vote(votes, 0.1 * k, track, [(0.0, 0.0, "person")])
    # Three half-lives later, the five person votes weigh less than 1; two animal votes win.
    later = 3.0 * CLASS_HALF_LIFE_S
    vote(votes, later, track, [(0.0, 0.0, "animal")])
    assert vote(votes, later + 0.1, track, [(0.0, 0.0, "animal")]) == {1: "animal"}


def test_each_detection_votes_for_the_track_the_tracker_gave_it():
    votes = ClassVotes()
    snapshot = tracks((0.0, 0.0, 0.0, 0.0), (30.0, 0.0, 0.0, 0.0))
    # The association gave the animal blob beside track 2 to track 1 (say the joint
    # event said so): the vote follows the association, not the nearest track. The
    # vehicle went to no track and votes for nothing.
    classes = vote(votes, 0.0, snapshot, [(29.0, 0.5, "animal"), (0.5, 0.0, "person"),
                                          (200.0, 0.0, "vehicle")], owners=[1, 2, -1])  # fmt: skip
    assert classes == {1: "animal", 2: "person"}


def test_a_detection_of_a_deleted_track_votes_for_nothing():
    votes = ClassVotes()
    classes = vote(votes, 0.0, tracks((0.0, 0.0, 0.0, 0.0)), [(0.0, 0.0, "person")], owners=[7])
    assert classes == {}


def test_detections_and_the_tracks_scan_must_match():
    with pytest.raises(ValueError, match="2 detections"):
        vote(ClassVotes(), 0.0, tracks((0.0, 0.0, 0.0, 0.0)),
             [(0.0, 0.0, "person"), (1.0, 0.0, "person")], owners=[1])  # fmt: skip


def test_votes_follow_the_trackers_association_as_a_person_and_a_camel_pass():
    # A walker and a camel pass 2 m apart on crossing paths; each detection is labelled
    # with the truth of whom it saw. Each of the two tracks ends with the class of the
    # target it follows, and the tracker's association is what carried the votes.
    rng = np.random.default_rng(3)
    sigma = 0.5
    tracker = Tracker(TrackerConfig(detection_probability=0.9))
    votes = ClassVotes()
    start = np.array([[-20.0, 1.0], [20.0, -1.0]])
    velocity = np.array([[1.4, 0.0], [-1.2, 0.0]])
    labels = ["person", "animal"]
    for k in range(150):
        t = 0.2 * k
        truth = start + velocity * t
        z = truth + rng.normal(0.0, sigma, truth.shape)
        Rs = np.tile(np.eye(2) * sigma**2, (2, 1, 1))
        snapshot = tracker.update(t, z, Rs)
        votes.vote(t, snapshot, z, Rs, labels)
    classes = votes.classes()
    for target, label in enumerate(labels):
        nearest = np.argmin(np.linalg.norm(snapshot.x[:, :2] - truth[target], axis=1))
        assert snapshot.confirmed[nearest]
        assert classes[int(snapshot.ids[nearest])] == label, (classes, target)


def follow(votes: ClassVotes, path, label: str, velocity=(0.0, 0.0)) -> dict[int, str]:
    """Track 1 fed one detection per scan along path [(t, e, n)], the track on each
    detection with the given velocity, sure of it (as a filter is after a jump)."""
    for t, e, n in path:
        classes = vote(votes, t, tracks((e, n, *velocity)), [(e, n, label)])
    return classes


def test_a_track_seen_driving_is_a_vehicle_whatever_its_blobs_look_like():
    # A pickup at 20 m/s whose hot bonnet alone stands out: an animal by its size.
    pickup = [(0.2 * k, 4.0 * k, 0.0) for k in range(16)]
    votes = ClassVotes()
    assert follow(votes, pickup[:5], "animal") == {1: "animal"}, "0.8 s: not yet judged"
    assert follow(votes, pickup[5:], "animal") == {1: "vehicle"}
    # It stops, and its blob still reads as an animal: it is still the pickup.
    parked = [(3.2 + 0.2 * k, 60.0, 0.0) for k in range(100)]
    assert follow(votes, parked, "animal") == {1: "vehicle"}


def test_a_walker_is_never_taken_for_a_vehicle():
    walker = [(0.2 * k, 1.4 * 0.2 * k, 0.0) for k in range(100)]
    assert follow(ClassVotes(), walker, "person", velocity=(1.4, 0.0)) == {1: "person"}


def test_a_track_that_jumps_onto_another_target_is_not_taken_for_a_vehicle():
    # A track waits at a false blob, then takes a camel's detections 25 m away: its
    # filter says 13 m/s and is sure of it for seconds after, but the camel walks.
    waiting = [(0.2 * k, 0.0, 0.0) for k in range(8)]
    camel = [(1.6 + 0.2 * k, 15.0 + 0.14 * k, 20.0) for k in range(40)]
    votes = ClassVotes()
    follow(votes, waiting, "animal")
    assert follow(votes, camel, "animal", velocity=(9.0, 9.0)) == {1: "animal"}


def test_detections_too_sparse_to_judge_a_stretch_decide_nothing():
    # Three detections 0.3 s apart, fast: each stretch is shorter than half a second.
    fast = [(0.3 * k, 6.0 * k, 0.0) for k in range(3)]
    assert follow(ClassVotes(), fast, "person") == {1: "person"}


def test_the_tally_of_a_deleted_track_is_dropped():
    votes = ClassVotes()
    vote(votes, 0.0, tracks((0.0, 0.0, 0.0, 0.0), (50.0, 0.0, 0.0, 0.0)),
         [(0.0, 0.0, "person"), (50.0, 0.0, "animal")], owners=[1, 2])  # fmt: skip
    survivor = tracks((0.0, 0.0, 0.0, 0.0))  # id 1 only
    assert vote(votes, 1.0, survivor, []) == {1: "person"}
    assert set(votes.tallies) == {1}
