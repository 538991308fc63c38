"""The alert detectors fed many tracks at once (`update_many`, as ingest feeds them) give
exactly the events of feeding the same tracks one at a time (`update`), call after call.

Random scenes over a zigzag border (one step may cross two of its segments, and so
end on the side it began), with
tracks that cross and come back, jump, enter zones, end (some ids come back later),
animals that cross, and people who stop in open desert, near a post, together, and
who move on again.
"""

import numpy as np
import pytest

from hq.alerts import (
    AlertConfig,
    CrossingDetector,
    DistressDetector,
    Place,
    TrackColumns,
    TrackView,
    Zone,
)
from hq.alerts.geometry import inside, paths_alerting
from hq.fusion.tables import CLASSES
from wire.geo import EnuFrame, segment_crossing
from wire.messages import TargetClass

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.0, 14.0, 600.0)
PERSON, VEHICLE, ANIMAL = (CLASSES.index(TargetClass[name])
                           for name in ("PERSON", "VEHICLE", "ANIMAL"))  # fmt: skip
BORDER_ENU = [(-2000, 0), (-1000, 300), (0, -300), (1000, 300), (2000, 0)]


def geodetic(points) -> tuple:
    return tuple(tuple(float(v) for v in FRAME.to_geodetic(e, n, 0.0)[:2]) for e, n in points)


def config() -> AlertConfig:
    return AlertConfig(
        border=geodetic(BORDER_ENU), home=geodetic([(0, -1500)])[0],
        zones=(Zone("well", geodetic([(-400, 100), (400, 100), (400, 500), (-400, 500)])),
               Zone("wadi", geodetic([(800, -900), (1600, -900), (1600, -100), (1200, -100),
                                      (1200, -500), (800, -500)]))),  # an L, concave
        places=(Place("post", *geodetic([(0, 2000)])[0], 500.0),),
        distress_radius_m=30.0, distress_dwell_s=20.0, distress_update_s=10.0,
        crossing_hold_s=0.0, crossing_class_wait_s=0.0,  # tested in test_hq_alerts_hold.py
    )  # fmt: skip


class Scene:
    """Random tracks over 100 s; `steps()` yields each second's rows in a random order."""

    def __init__(self, seed: int):
        self.rng = rng = np.random.default_rng(seed)
        tracks = []  # (class, position at t=0, velocity, time it turns back, start, end)
        for _ in range(40):  # walkers and drivers across the border, turning back
            speed = rng.uniform(2.0, 40.0)
            heading = rng.uniform(0, 2 * np.pi)
            tracks.append((rng.choice([PERSON, VEHICLE, ANIMAL]),
                           rng.uniform([-1800, -700], [1800, 700]),
                           speed * np.array([np.cos(heading), np.sin(heading)]),
                           rng.uniform(10, 90),  # turns back
                           rng.integers(0, 30), rng.integers(50, 130)))  # fmt: skip
        for start, velocity in (((0, 700), (0, -15)), ((1400, -1000), (0, 20))):  # into zones
            tracks.append((VEHICLE, np.array(start, float), np.array(velocity, float), 200, 0, 130))
        # Across at x = -500 m and back 40 s later.
        tracks.append((VEHICLE, np.array([-500.0, -200.0]), np.array([0.0, 10.0]), 40, 0, 130))
        for _ in range(4):  # jumpers: one step crosses two border segments
            tracks.append((VEHICLE, np.array([-1200.0, rng.uniform(-20, 20)]),
                           np.array([1800.0, 0.0]), 1.5, 0, 130))  # fmt: skip
        # People who stop: two groups in open desert (the second moves on at 60 s), one
        # near the post; each person with a small jitter.
        for centre, members, leave in (((1500, 1500), 3, 200), ((-1500, -1500), 2, 60),
                                       ((100, 1900), 2, 200)):  # fmt: skip
            for _ in range(members):
                tracks.append((PERSON, np.array(centre) + rng.uniform(-40, 40, 2),
                               np.zeros(2), leave, rng.integers(0, 10), 130))  # fmt: skip
        self.tracks = tracks
        self.reused = {k: k + 1000 for k in rng.choice(len(tracks), 5, replace=False).tolist()}

    def position(self, k: int, t: float) -> np.ndarray:
        cls, start, velocity, turn, _, _ = self.tracks[k]
        if not velocity.any():  # stopped until `turn`, then walking east
            return start + np.array([max(t - turn, 0.0) * 3.0, 0.0]) + self.rng.normal(0, 2.0, 2)
        there = min(t, turn)
        return start + velocity * there - velocity * max(t - turn, 0.0)

    def steps(self):
        for t in np.arange(0.0, 100.0):
            rows = []
            for k, (cls, _, _, _, start, end) in enumerate(self.tracks):
                if not start <= t <= end or self.rng.random() < 0.1:  # some updates missed
                    continue
                # Some end at 70 s, go on under another id, and come back under theirs at 85 s.
                gid = self.reused[k] if k in self.reused and 70 < t < 85 else k + 1
                ended = t == end or (k in self.reused and t == 70)
                e, n = self.position(k, t)
                rows.append((gid, t + self.rng.uniform(0, 0.5), e, n, cls, ended))
            self.rng.shuffle(rows)
            yield rows


def columns(rows):
    ids, times, east, north, classes, ended = zip(*rows, strict=True)
    class_p = np.eye(len(CLASSES))[np.array(classes, np.int64)]
    return TrackColumns(np.array(ids, np.int64), np.array(times), np.array(east),
                        np.array(north), class_p, np.array(ended, bool))  # fmt: skip


def views(rows):
    return [TrackView(int(i), float(t), float(e), float(n), str(CLASSES[c]), bool(end))
            for i, t, e, n, c, end in rows]  # fmt: skip


def both_ways(detector_type, steps):
    """(events of update_many per call, events of update per track) over the same steps."""
    batched, single = detector_type(config(), FRAME), detector_type(config(), FRAME)
    many, one = [], []
    for rows in steps:
        many.append(batched.update_many(columns(rows)) if rows else [])
        one.append([e for view in views(rows) for e in single.update(view)])
    return many, one


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_crossings_in_batches_are_the_crossings_one_by_one(seed):
    scene = Scene(seed)
    many, one = both_ways(CrossingDetector, list(scene.steps()))
    assert many == one
    events = [e for call in one for e in call]
    crossings = [e for e in events if e.kind == "border_crossing"]
    per_track = np.bincount([e.track_ids[0] for e in crossings])
    assert per_track.max() >= 2  # a track that crossed and came back
    # The jumpers' first step (x -1200 -> 600 m, y within 20 m of 0) crosses two segments
    # of the zigzag and ends on the side it began: no crossing.
    jumpers = {len(scene.tracks) - 7 - 4 + k + 1 for k in range(4)}
    assert not [e for e in crossings if e.track_ids[0] in jumpers and e.time < 3.0]
    assert {"well", "wadi"} & {e.details.get("zone") for e in events}
    animals = {k + 1 for k, track in enumerate(scene.tracks) if track[0] == ANIMAL}
    assert animals and not animals & {e.track_ids[0] for e in events}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_distress_in_batches_is_distress_one_by_one(seed):
    scene = Scene(seed)
    many, one = both_ways(DistressDetector, list(scene.steps()))
    assert many == one
    changes = [e.change for call in one for e in call]
    assert {"raised", "updated", "cleared"} <= set(changes)
    # The two groups in open desert, each one alert however many it has; none at the post.
    people = {}
    for event in (e for call in one for e in call):
        people.setdefault(event.alert_id, set()).update(event.track_ids)
    first = len(scene.tracks) - 7 + 1  # ids of the people who stop: 3, 2 and 2 at the post
    groups = [set(range(first, first + 3)), {first + 3, first + 4}]
    assert all(any(group <= ids for ids in people.values()) for group in groups)
    assert not {first + 5, first + 6} & set().union(*people.values())


def test_a_track_twice_in_one_call_is_taken_in_order():
    rows = [(5, 0.0, 0.0, -100.0, VEHICLE, False), (5, 1.0, 0.0, 100.0, VEHICLE, False),
            (5, 2.0, 0.0, -100.0, VEHICLE, False), (6, 0.0, 10.0, 10.0, PERSON, False),
            (6, 30.0, 10.0, 10.0, PERSON, False)]  # fmt: skip
    for detector_type in (CrossingDetector, DistressDetector):
        many, one = both_ways(detector_type, [rows, rows[2:]])
        assert many == one and one[0]


def test_an_ended_track_starts_afresh():
    """Its id seen again on the other side of the border is no crossing; its distress alert
    stands when it ends, and clears only when the id is seen away from where it stayed."""
    steps = [[(9, float(t), 0.0, -100.0, PERSON, False)] for t in range(25)]
    steps += [[(9, 25.0, 0.0, -100.0, PERSON, True)], [(9, 40.0, 0.0, 100.0, PERSON, False)]]
    for detector_type in (CrossingDetector, DistressDetector):
        many, one = both_ways(detector_type, steps)
        assert many == one
    assert [e.change for call in one for e in call] == ["raised", "cleared"]
    assert one[-1][0].time == 40.0
    assert not [e for call in both_ways(CrossingDetector, steps)[0] for e in call]


def test_paths_that_touch_the_border_exactly():
    """Ends on a vertex, starts on it, runs along a segment, stands still on it."""
    detector = CrossingDetector(config(), FRAME)
    p, q = detector.border[1], detector.border[2]
    middle = p + 0.5 * (q - p)
    path = [p + [0, -50], p, p + [0, 50], middle, middle, q, middle + [0, -80], middle]
    rows = [[(1, float(t), e, n, VEHICLE, False)] for t, (e, n) in enumerate(path)]
    many, one = both_ways(CrossingDetector, rows)
    assert many == one and sum(map(len, one)) >= 2


def test_the_batched_geometry_is_the_scalar_geometry():
    """Crossings of a zigzag and entries into a concave zone, random and touching ones."""
    rng = np.random.default_rng(7)
    border = np.array([[-10, 0], [-3, 6], [0, -2], [4, 5], [10, 0]], float)
    zones = [np.array([[0, 0], [10, 0], [10, 10], [5, 3], [0, 10]], float),
             np.array([[-8, -8], [-2, -8], [-2, -2]], float)]  # fmt: skip
    a, b = rng.uniform(-12, 12, (2000, 2)), rng.uniform(-12, 12, (2000, 2))
    b[:50] = a[:50] + (border[1] - border[0]) * rng.normal(size=(50, 1))  # parallel
    a[50:100], b[100:150] = border[1], border[2]  # starting and ending on a vertex
    a[150:200], b[200:250] = zones[0][3], zones[0][1]  # on a zone's corners
    found = paths_alerting(a, b, border, np.concatenate(zones), np.array([0, 5, 8]))
    expected = [any(segment_crossing(a[k], b[k], p, q) is not None
                    for p, q in zip(border[:-1], border[1:], strict=True))
                or any(inside(*b[k], z) and not inside(*a[k], z) for z in zones)
                for k in range(len(a))]  # fmt: skip
    assert found.tolist() == expected
    assert 0.2 < np.mean(expected) < 0.8
