"""The scene scorer on pictures made by hand, where every figure can be worked out:
per target and per group count, classes, where misses and false tracks come from, the
view, crossing and distress alerts."""

import numpy as np
import pytest

from bench.scene_alerts import score_crossings, score_distress
from bench.scene_score import Picture, Truth, score_picture
from bench.scene_tap import frames_taken, read_pictures
from bench.scenes import scene_paths, with_seed
from hq.store.records import AlertRecord
from sim_hw.scenario import load_config
from wire.geo import EnuFrame
from wire.messages import Alert, Track, TrackBatch, encode

pytestmark = pytest.mark.unit

ORIGIN = {"lat": 22.694, "lon": 14.18, "alt": 700.0}
FRAME = EnuFrame(ORIGIN["lat"], ORIGIN["lon"], ORIGIN["alt"])
SAMPLES = np.arange(0.0, 20.0, 1.0)


def make_truth(positions: dict[str, tuple[str, str, callable]], crossings=(), stationary=(),
               warm=()) -> Truth:  # fmt: skip
    """`positions`: target -> (group, class, t -> (e, n)); rows every 0.5 s."""
    header = {
        "kind": "scenario", "origin": ORIGIN,
        "targets": [{"id": k, "group": g, "class": c} for k, (g, c, _) in positions.items()],
        "crossings": list(crossings), "stationary": list(stationary),
        "warm_spots": [{"id": f"w{k}", "enu": list(w)} for k, w in enumerate(warm)],
    }  # fmt: skip
    times = np.arange(-2.0, 30.0, 0.5)
    rows = [
        {"kind": "truth", "t": float(t),
         "targets": [{"id": k, "enu": list(where(t))} for k, (_, _, where) in positions.items()]}
        for t in times
    ]  # fmt: skip
    return Truth(header, times, rows)


def track(where, count=1, t0=-1.0, t1=25.0, step=0.5):
    return np.array([(t, *where(t), count) for t in np.arange(t0, t1, step)])


def everyone(truth):
    return lambda t: set(truth.classes())


def walker(e0):
    return lambda t: (e0, 1.4 * t)


def test_a_group_on_one_track_is_one_target_followed_per_target_and_all_of_it_counted():
    """Three walkers 2.5 m apart on one track of count 3: per target, two of three are
    missed every sample, and every miss has the group's track beside it; counted, all
    three are followed."""
    truth = make_truth({f"w{k}": ("g", "person", walker(2.5 * k)) for k in range(3)})
    picture = Picture({7: track(walker(2.5), count=3)}, {7: ["person"] * 52})
    score = score_picture(truth, picture, SAMPLES, everyone(truth))
    assert score.mota == pytest.approx(1 / 3)
    assert score.merged_miss_share == pytest.approx(1.0)
    assert score.count_mota == pytest.approx(1.0)
    assert score.count_error == pytest.approx(0.0)
    assert score.class_accuracy["person"] == pytest.approx(1.0)
    # The same track claiming count 1: counted, the group is short of two.
    single = Picture({7: track(walker(2.5))}, {7: ["person"] * 52})
    counted = score_picture(truth, single, SAMPLES, everyone(truth))
    assert counted.count_mota == pytest.approx(1 / 3)
    assert counted.count_error == pytest.approx(2 / 3)


def test_switches_false_tracks_on_warm_ground_classes_and_the_view():
    """One walker followed by track 1 then track 2 (one switch); a false track sits on a
    warm spot 100 m away; a camel is followed by a track called person."""
    people = {"w": ("w", "person", walker(0.0)), "c": ("c", "animal", lambda t: (50.0, 0.0))}
    truth = make_truth(people, warm=[(100.0, 0.0)])
    first = track(walker(0.0), t1=10.0)
    second = track(walker(0.0), t0=11.5)  # the first is drawn until 11 s: no overlap
    picture = Picture({1: first, 2: second, 3: track(lambda t: (100.5, 0.0)),
                       4: track(lambda t: (50.0, 1.0))},
                      {1: ["person"] * len(first), 2: ["person"] * len(second),
                       3: ["person"] * 52, 4: ["person"] * 52})  # fmt: skip
    score = score_picture(truth, picture, SAMPLES, everyone(truth))
    assert score.id_switches == 1
    # 20 samples of the walker: one switch in 20 target-seconds is 15 per 5 minutes; the
    # camel's samples count too: 40 target-seconds.
    assert score.switches_per_target_5min == pytest.approx(300.0 / 40.0)
    assert score.false_warm_share == pytest.approx(1.0) and score.false_far_share == 1.0
    assert score.class_accuracy == {"person": 1.0, "vehicle": None, "animal": 0.0}
    # Only the walker in view: the camel's track, beside a target nobody sees, is left out.
    only_walker = score_picture(truth, picture, SAMPLES, lambda t: {"w"})
    assert only_walker.target_samples == 20
    assert only_walker.class_samples["animal"] == 0
    assert only_walker.gospa_false_mean == pytest.approx(10.0)  # the warm spot's track


def record(alert_type: str, t: float, e: float, n: float, track_ids=(), first=None):
    lat, lon, _ = FRAME.to_geodetic(e, n, ORIGIN["alt"])
    alert = Alert(site="s", node="hq", alert_id=f"{alert_type}-{t}-{e}", alert_type=alert_type,
                  severity="warning", time=t, message="", lat=float(lat), lon=float(lon),
                  track_ids=list(track_ids))  # fmt: skip
    return AlertRecord(alert=alert, state="open", first_time=t if first is None else first)


def crossing(target, group, cls, t, direction="inbound"):
    return {"target": target, "group": group, "class": cls, "t": t, "direction": direction}


def test_crossing_alerts_credit_a_group_track_by_its_count_and_flag_false_and_animal_ones():
    truth = make_truth({"w1": ("g", "person", lambda t: (0.0, 1.4 * t - 14.0)),
                        "w2": ("g", "person", lambda t: (2.5, 1.4 * t - 14.0)),
                        "v": ("v", "vehicle", lambda t: (60.0, 10.0 * t - 50.0)),
                        "c": ("c", "animal", lambda t: (-60.0, 0.5 * t - 5.0))},
                       crossings=[crossing("w1", "g", "person", 10.0),
                                  crossing("w2", "g", "person", 10.0),
                                  crossing("v", "v", "vehicle", 5.0),
                                  crossing("c", "c", "animal", 10.0)])  # fmt: skip
    seen = lambda target, t: True  # noqa: E731
    group_alert = record("border_crossing", 10.5, 1.0, 0.0, track_ids=[5])
    flapping = record("border_crossing", 12.0, 1.0, 2.0, track_ids=[5])
    camel = record("border_crossing", 10.0, -60.0, 0.0, track_ids=[9])
    far = record("border_crossing", 11.0, 400.0, 0.0)
    records = [group_alert, flapping, camel, far]
    counted = score_crossings(truth, records, 0.0, 20.0, seen, {5: 2})
    assert (counted.crossings, counted.recalled) == (3, 2)
    assert counted.by_class == {"person": (2, 2), "vehicle": (0, 1)}
    assert (counted.groups, counted.groups_recalled) == (2, 1)
    # The flapping alert would take the second walker's crossing if the track counted one.
    assert (counted.false_alerts, counted.animal_alerts) == (2, 1)
    as_one = score_crossings(truth, records, 0.0, 20.0, seen, {5: 1})
    assert as_one.recalled == 2 and as_one.false_alerts == 1
    # A crossing no camera saw does not count.
    unseen = score_crossings(truth, records, 0.0, 20.0, lambda target, t: target != "v", {})
    assert unseen.crossings == 2


def test_distress_delay_is_from_when_the_group_was_stopped_and_seen_and_elsewhere_is_false():
    truth = make_truth({"s1": ("s", "person", lambda t: (30.0, 0.0)),
                        "s2": ("s", "person", lambda t: (31.0, 0.0)),
                        "f": ("f", "person", lambda t: (-30.0, 0.0))},
                       stationary=[{"group": "s", "class": "person", "members": 2, "since": 5.0,
                                    "enu": [30.5, 0.0, 0.0]},
                                   {"group": "f", "class": "person", "members": 1,
                                    "since": -100.0, "enu": [-30.0, 0.0, 0.0]}])  # fmt: skip
    records = [
        record("distress", 0.0, 31.0, 1.0, first=52.0),
        record("distress", 0.0, 200.0, 0.0, first=60.0),  # a warm rock
        record("distress", 0.0, 30.0, 0.0, first=-20.0),  # before the group stopped
    ]
    first_seen = {("s1", "s2"): 8.0, ("f",): 2.0}
    score = score_distress(truth, records, 0.0, 100.0, lambda m: first_seen[tuple(m)])
    stopped, found = score.groups
    assert (stopped.group, stopped.found, stopped.delay_s) == ("s", False, 44.0)
    assert (found.group, found.found, found.delay_s) == ("f", True, None)
    assert (score.alerts, score.false_alerts) == (3, 2)


def wire_track(track_id, t, e, n, status="confirmed", target_class="person", count=1):
    lat, lon, _ = FRAME.to_geodetic(e, n, ORIGIN["alt"])
    return Track(track_id=track_id, time=t, lat=float(lat), lon=float(lon), alt=ORIGIN["alt"],
                 position_enu=(e, n), velocity_enu=(0.0, 0.0),
                 position_covariance=[[1.0, 0.0], [0.0, 1.0]],
                 velocity_covariance=[[1.0, 0.0], [0.0, 1.0]], target_class=target_class,
                 status=status, quality=0.9, hits=5, count=count)  # fmt: skip


def test_a_nodes_picture_is_read_back_from_its_saved_batches_in_the_origins_frame(tmp_path):
    """Two batches of a node whose post is 1 km east of the origin: its tracks come back at
    their WGS84 places in the origin's frame, tentative ones left out, classes and counts
    per row; the node's frame counter is read from its log."""
    batches = [
        TrackBatch(site="s", node="east", seq=seq, sent=t, frame_origin=(22.694, 14.19, 700.0),
                   tracks=[wire_track(1, t, 100.0, 5.0 * t, count=2,
                                      target_class="animal" if seq == 1 else "person"),
                           wire_track(2, t, -50.0, 0.0, status="tentative")])
        for seq, t in ((1, 10.0), (2, 11.0))
    ]  # fmt: skip
    path = tmp_path / "node-tracks.jsonl"
    path.write_text("".join(encode(b).decode() + "\n" for b in reversed(batches)))
    (picture,) = read_pictures(path, FRAME).values()
    assert list(picture.histories) == [1]
    history = picture.histories[1]
    assert history[:, 0].tolist() == [10.0, 11.0]  # sorted by sequence, not file order
    assert np.allclose(history[:, 1:3], [[100.0, 50.0], [100.0, 55.0]], atol=0.01)
    assert picture.sightings_at(11.2)[1][1:] == ("person", 2)
    assert picture.sightings_at(10.2)[1][1:] == ("animal", 2)
    log = tmp_path / "node.log"
    log.write_text("x edge.run node running\nx edge.run node stopped counters=NodeCounters("
                   "frames=1234, frames_without_pose=4, frames_decimated=30, "
                   "detections=9)\n")  # fmt: skip
    assert frames_taken(log) == 1200
    assert frames_taken(tmp_path / "absent.log") is None


def test_a_scene_runs_with_another_seed_as_an_equal_scenario_but_for_the_seed(tmp_path):
    (path,) = scene_paths(["scene-clutter-1"])
    copy = with_seed(path, 7, tmp_path)
    assert load_config(copy) == load_config(path).model_copy(update={"seed": 7})
    assert with_seed(path, None, tmp_path) == path
    assert len(scene_paths([])) >= 16 and len(scene_paths(["scene-groups"])) >= 2
