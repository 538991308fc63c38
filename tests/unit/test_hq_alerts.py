"""Alerts from the scenario's own truth as a perfect fused picture: exactly the crossings
and the stranded group the scenario holds, no alert for camels; posts and drones failing."""

import numpy as np
import pytest

from hq.alerts import (
    AlertConfig,
    CrossingDetector,
    DistressDetector,
    NodeHealthDetector,
    Place,
    TrackView,
    Zone,
)
from hq.flow import FlowStatistics
from sim_hw.__main__ import main as sim_main
from sim_hw.truth import read
from tests.conftest import PROJECT_ROOT
from wire.geo import EnuFrame
from wire.messages import DroneLink, NodeStatus

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("alerts")
    assert sim_main(["scenario", str(PROJECT_ROOT / "configs/scenarios/small.toml"),
                     "--out", str(out)]) == 0  # fmt: skip
    return read(out / "truth.jsonl")


def views(head, rows):
    """Each truth row's targets as fused tracks, ids by order of first appearance."""
    ids = {t["id"]: k + 1 for k, t in enumerate(head["targets"])}
    classes = {t["id"]: t["class"] for t in head["targets"]}
    for row in rows:
        for target in row["targets"]:
            yield TrackView(ids[target["id"]], row["t"], target["enu"][0], target["enu"][1],
                            classes[target["id"]])


def config_for(head, **changes):
    post = head["posts"][0]
    settings = dict(border=tuple(map(tuple, head["border"])), home=(post["lat"], post["lon"]),
                    places=(Place("post", post["lat"], post["lon"], 300.0),),
                    distress_dwell_s=120.0)  # fmt: skip
    settings.update(changes)
    return AlertConfig(**settings)


def test_crossings_are_exactly_the_scenarios_less_the_animals(small):
    head, rows = small
    frame = EnuFrame(**head["origin"])
    detector = CrossingDetector(config_for(head), frame)
    events = [e for v in views(head, rows) for e in detector.update(v)]
    ids = {t["id"]: k + 1 for k, t in enumerate(head["targets"])}
    expected = sorted((ids[c["target"]], c["direction"], c["t"]) for c in head["crossings"]
                      if c["class"] != "animal")  # fmt: skip
    got = sorted((e.track_ids[0], e.details["direction"], e.time) for e in events)
    assert len(got) == len(expected) >= 4
    for (a_id, a_dir, a_t), (b_id, b_dir, b_t) in zip(got, expected, strict=True):
        assert (a_id, a_dir) == (b_id, b_dir) and a_t == pytest.approx(b_t, abs=0.5)
    assert {e.kind for e in events} == {"border_crossing"}


def test_the_stranded_group_raises_one_distress_alert_at_the_right_time(small):
    head, rows = small
    frame = EnuFrame(**head["origin"])
    detector = DistressDetector(config_for(head), frame)
    events = [e for v in views(head, rows) for e in detector.update(v)]
    raised = [e for e in events if e.change == "raised"]
    (stationary,) = head["stationary"]
    assert len(raised) == 1, events
    alert = raised[0]
    assert alert.kind == "distress" and alert.severity == "critical"
    # Both stranded people, nobody else; raised one dwell time after they stopped.
    stranded_ids = {k + 1 for k, t in enumerate(head["targets"]) if t["group"] == "stranded"}
    updates = [e for e in events if e.alert_id == alert.alert_id]
    assert set().union(*(e.track_ids for e in updates)) == stranded_ids
    # The dwell clock starts when a track last came within the 30 m radius of where it
    # stays: up to 30 m / 1.2 m/s before it stops; the first of the two stops 1.25 s
    # before the second, which the header's "since" names.
    assert stationary["since"] - 30 / 1.2 - 1.25 + 120 <= alert.time
    assert alert.time <= stationary["since"] + 120 + 0.5
    lat, lon = alert.position
    east, north, _ = frame.from_geodetic(lat, lon, frame.alt)
    assert np.hypot(east - stationary["enu"][0], north - stationary["enu"][1]) < 5.0
    assert not [e for e in events if e.change == "cleared"]


def test_no_distress_near_a_post_or_for_people_who_keep_walking(small):
    head, rows = small
    frame = EnuFrame(**head["origin"])
    post = head["posts"][0]
    near_help = config_for(head, places=(Place("post", post["lat"], post["lon"], 2000.0),))
    detector = DistressDetector(near_help, frame)
    assert not [e for v in views(head, rows) for e in detector.update(v)]


def test_a_group_that_moves_on_clears_its_alert():
    frame = EnuFrame(22.0, 14.0, 600.0)
    config = AlertConfig(border=((22.5, 13.0), (22.5, 15.0)), home=(22.0, 14.0),
                         distress_dwell_s=60.0)  # fmt: skip
    detector = DistressDetector(config, frame)
    events = []
    for t in range(0, 120):
        events += detector.update(TrackView(7, float(t), 3000.0, 3000.0, "person"))
    for t in range(120, 140):
        events += detector.update(TrackView(7, float(t), 3000.0 + 1.4 * (t - 119) * 30, 3000.0,
                                            "person"))  # fmt: skip
    assert [e.change for e in events] == ["raised", "cleared"]


def test_a_restarted_hq_names_a_new_stranded_group_apart_from_the_old_one():
    # Operators' resolutions are kept by alert id across HQ restarts: a new group's
    # alert must not take the id of one resolved before the restart.
    frame = EnuFrame(22.0, 14.0, 600.0)
    config = AlertConfig(border=((22.5, 13.0), (22.5, 15.0)), home=(22.0, 14.0),
                         distress_dwell_s=60.0)  # fmt: skip
    raised = []
    for start in (0.0, 5000.0):  # a fresh detector: HQ started again
        detector = DistressDetector(config, frame)
        for t in range(0, 70):
            raised += [e.alert_id for e in detector.update(
                TrackView(1, start + t, 3000.0, 3000.0, "person")) if e.change == "raised"]
    assert len(raised) == 2 and raised[0] != raised[1], raised


def test_zone_entry_is_raised_once_when_a_track_enters():
    frame = EnuFrame(22.0, 14.0, 600.0)
    square = tuple(frame.to_geodetic(e, n, 0.0)[:2] for e, n in
                   [(-100, -100), (100, -100), (100, 100), (-100, 100)])  # fmt: skip
    config = AlertConfig(border=((23.0, 13.0), (23.0, 15.0)), home=(22.0, 14.0),
                         zones=(Zone("well", square),))  # fmt: skip
    detector = CrossingDetector(config, frame)
    events = []
    for k in range(40):
        events += detector.update(TrackView(3, float(k), -300.0 + 15.0 * k, 0.0, "vehicle"))
    assert [(e.kind, e.details["zone"]) for e in events] == [("zone_entry", "well")]


def status(state="online", connected=True, battery=0.8, backlog=0):
    return NodeStatus(site="tummo", node="west-1", state=state, time=100.0,
                      software_version="0.1.0", outbox_depth=backlog,
                      drones=[DroneLink(sysid=1, connected=connected, packet_loss=0.0,
                                        battery_remaining=battery)])  # fmt: skip


def test_posts_and_drones_raise_and_clear_their_alerts():
    detector = NodeHealthDetector(AlertConfig(border=((0, 0), (1, 1)), home=(0, 0)))
    assert detector.status(status(), 100.0) == []
    raised = detector.status(status(connected=False, battery=0.1, backlog=5000), 110.0)
    assert sorted(e.kind for e in raised) == ["backlog", "battery", "drone_link"]
    assert {e.change for e in raised} == {"raised"}
    assert detector.status(status(connected=False, battery=0.1, backlog=5000), 120.0) == []
    cleared = detector.status(status(), 130.0)
    assert sorted(e.kind for e in cleared) == ["backlog", "battery", "drone_link"]
    assert {e.change for e in cleared} == {"cleared"}
    offline = detector.status(status(state="offline"), 140.0)
    assert [(e.kind, e.change) for e in offline] == [("node_offline", "raised")]
    silent = detector.silence(140.0 + 121.0)
    assert [(e.kind, e.change) for e in silent] == [("node_offline", "raised")]


def test_flow_statistics_count_crossings_without_identities(small):
    head, rows = small
    detector = CrossingDetector(config_for(head), EnuFrame(**head["origin"]))
    flow = FlowStatistics()
    for view in views(head, rows):
        for event in detector.update(view):
            flow.add(event)
    table = flow.table()
    expected = {}
    for c in head["crossings"]:
        if c["class"] != "animal":
            key = (c["t"] // 3600 * 3600, c["direction"], c["class"])
            expected[key] = expected.get(key, 0) + 1
    assert {(r["hour_start"], r["direction"], r["class"]): r["count"] for r in table} == expected
    assert all(set(r) == {"hour_start", "segment", "direction", "class", "count"} for r in table)
