"""How many targets a track stands for: its group's members, and people side by side."""

from dataclasses import replace

import numpy as np
import pytest

from edge.batches import track_batch
from edge.track_groups import GroupCounts, people_in
from edge.tracking import Tracker
from edge.tracking.table import Tracks
from wire.geo import EnuFrame
from wire.messages import decode, encode

pytestmark = pytest.mark.unit

FILE = np.array([[0.0, 0.0], [2.7, 0.3], [5.2, -0.2]])  # three walkers 2.5-3 m apart


def snapshot(confirmed, owners) -> Tracks:
    """Tracks with ids 1.. (confirmed or not), after a scan whose detections went to `owners`."""
    n = len(confirmed)
    return Tracks(ids=np.arange(1, n + 1), x=np.zeros((n, 4)), P=np.tile(np.eye(4), (n, 1, 1)),
                  confirmed=np.array(confirmed), hits=np.full(n, 5), misses=np.zeros(n, int),
                  age=np.full(n, 5.0), last_update=np.zeros(n), score=np.full(n, 10.0),
                  sensor_mask=np.ones(n, np.int64), sensor_names=("thermal",),
                  measurement_track=np.array(owners, np.int64))  # fmt: skip


def test_a_track_counts_the_members_linked_to_its_detection():
    groups = GroupCounts()
    # Track 1 used the first walker's detection; the second went to no track, the third
    # started tentative track 2; a blob 20 m off is no member.
    z = np.vstack([FILE, [[20.0, 0.0]]])
    groups.count(0.0, snapshot([True, False, False], [1, -1, 2, 3]), z)
    assert groups.counts()[1] == 3
    # The third walker's own track is confirmed now: it split off and counts there, with
    # the free second walker, whose detection is nearer the third's than the first's:
    # each detection is counted once.
    groups = GroupCounts()
    groups.count(0.0, snapshot([True, True], [1, -1, 2]), FILE)
    assert groups.counts() == {1: 1, 2: 2}


def test_members_missed_in_some_frames_still_count():
    # Each member is seen in about 60 % of the frames; one frame alone undercounts, the
    # window's high quantile does not.
    rng = np.random.default_rng(0)
    groups = GroupCounts()
    for k in range(50):
        seen = rng.random(3) < 0.6
        seen[0] = True  # the detection the track used
        owners = np.where(np.arange(3) == 0, 1, -1)[seen]
        groups.count(0.2 * k, snapshot([True], owners), FILE[seen])
    assert groups.counts() == {1: 3}


def test_a_person_blob_as_wide_as_three_counts_three():
    groups = GroupCounts()
    z = np.array([[0.0, 0.0]])
    groups.count(0.0, snapshot([True], [1]), z, widths_m=np.array([3.6]), classes={1: "person"})
    assert groups.counts() == {1: 3}
    # The same width on a camel is one camel.
    groups = GroupCounts()
    groups.count(0.0, snapshot([True], [1]), z, widths_m=np.array([3.6]), classes={1: "animal"})
    assert groups.counts() == {1: 1}
    assert people_in(0.7) == 1 and people_in(np.nan) == 1 and people_in(2.4) == 2


def test_the_counts_of_tracked_walkers_add_up_to_the_people_there():
    # Three walkers 2.5-3 m apart, each seen in 60 % of the frames, with a georeferencing
    # error shared by the frame's points. However many tracks the tracker keeps for them,
    # the counts of its confirmed tracks add up to three in nearly every scan.
    rng = np.random.default_rng(1)
    tracker, groups = Tracker(), GroupCounts()
    velocity = np.array([0.3, 1.3])
    totals = []
    for k in range(400):
        t = k / 5.0
        seen = rng.random(3) < 0.6
        shared_error = rng.normal(0.0, 3.0, 2)
        z = FILE[seen] + velocity * t + shared_error + rng.normal(0.0, 0.3, (seen.sum(), 2))
        tracks = tracker.update(t, z, np.tile(np.eye(2) * 9.0, (len(z), 1, 1)))
        groups.count(t, tracks, z)
        if k >= 100:
            counts = groups.counts()
            totals.append(sum(counts.get(int(i), 1) for i in tracks.ids[tracks.confirmed]))
    assert np.mean(np.array(totals) == 3) > 0.95, np.bincount(totals)


def test_a_tracks_count_is_on_the_wire():
    tracker = Tracker()
    for k in range(5):
        tracks = tracker.update(float(k), np.array([[0.0, 1.4 * k]]), np.eye(2)[None])
    batch = track_batch(tracks, EnuFrame(22.8, 14.1, 600.0), site="s", node="n", seq=1,
                        state_time=4.0, sent=4.0, counts={int(tracks.ids[0]): 3})  # fmt: skip
    assert decode(encode(batch)).tracks[0].count == 3
    plain = track_batch(replace(tracks), EnuFrame(22.8, 14.1, 600.0), site="s", node="n", seq=2,
                        state_time=4.0, sent=4.0)  # fmt: skip
    assert plain.tracks[0].count == 1


def test_detections_and_the_tracks_scan_must_match():
    with pytest.raises(ValueError, match="3 detections"):
        GroupCounts().count(0.0, snapshot([True], [1]), FILE)
