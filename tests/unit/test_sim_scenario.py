"""Scenarios: targets move as configured, sit on the ground, and the events are right."""

import math
import tomllib

import numpy as np
import pytest
from pydantic import ValidationError
from pymavlink import mavutil
from pyproj import Transformer

from sim_hw.__main__ import main as sim_main
from sim_hw.scenario import ScenarioConfig, drone_of, ground_targets, load_config, to_enu
from sim_hw.truth import header, read
from tests.conftest import PROJECT_ROOT
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

SMALL = PROJECT_ROOT / "configs" / "scenarios" / "small.toml"
TUMMO = PROJECT_ROOT / "configs" / "scenarios" / "tummo.toml"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenario")
    assert sim_main(["scenario", str(SMALL), "--out", str(out)]) == 0
    head, rows = read(out / "truth.jsonl")
    return out, head, rows


def tracks_of(rows):
    """target id -> (times, ENU positions (K, 3), velocities (K, 3), lat/lon/alt (K, 3))."""
    series = {}
    for row in rows:
        for target in row["targets"]:
            entry = series.setdefault(target["id"], ([], [], [], []))
            entry[0].append(row["t"])
            entry[1].append(target["enu"])
            entry[2].append(target["velocity_enu"])
            entry[3].append([target["lat"], target["lon"], target["alt"]])
    return {k: tuple(np.array(v) for v in entry) for k, entry in series.items()}


def test_the_drone_flies_in_its_own_tlog(small):
    out, head, _ = small
    assert [d["sysid"] for d in head["drones"]] == [1]
    log = mavutil.mavlink_connection(str(out / head["drones"][0]["tlog"]))
    systems = set()
    while (message := log.recv_match(type="GLOBAL_POSITION_INT")) is not None:
        systems.add(message.get_srcSystem())
    assert systems == {1}


def test_targets_move_at_their_configured_speed_and_report_it(small):
    _, head, rows = small
    tracks = tracks_of(rows)
    speeds = {"walkers": 1.4, "pickup": 20.0}
    for target in head["targets"]:
        group = target["group"]
        if group not in speeds:
            continue
        t, enu, velocity, _ = tracks[target["id"]]
        # Between two samples well inside the route the displacement is speed x time.
        moved = np.linalg.norm(np.diff(enu[:, :2], axis=0), axis=1) / np.diff(t)
        assert np.median(moved) == pytest.approx(speeds[group], rel=0.01)
        assert np.median(np.linalg.norm(velocity, axis=1)) == pytest.approx(speeds[group], rel=0.01)


def test_targets_stand_on_the_ground_at_the_posts_height(small):
    _, head, rows = small
    origin = head["origin"]
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    lon0, lat0 = math.radians(origin["lon"]), math.radians(origin["lat"])
    east_axis = np.array([-math.sin(lon0), math.cos(lon0), 0.0])
    north_axis = np.array([-math.sin(lat0) * math.cos(lon0),
                           -math.sin(lat0) * math.sin(lon0), math.cos(lat0)])  # fmt: skip
    up_axis = np.cross(east_axis, north_axis)
    centre = np.array(to_ecef.transform(origin["lon"], origin["lat"], origin["alt"]))
    for row in rows[::50]:
        for target in row["targets"]:
            assert target["alt"] == pytest.approx(origin["alt"], abs=2e-3)
            # pyproj's ECEF of the WGS84 position, projected on the post's ENU axes.
            point = np.array(to_ecef.transform(target["lon"], target["lat"], target["alt"]))
            offset = point - centre
            enu = [offset @ east_axis, offset @ north_axis, offset @ up_axis]
            assert enu == pytest.approx(target["enu"], abs=5e-3)


def test_the_stranded_group_stops_and_stays(small):
    _, head, rows = small
    (event,) = head["stationary"]
    assert event["group"] == "stranded" and event["class"] == "person" and event["members"] == 2
    tracks = tracks_of(rows)
    for member in ("stranded-1", "stranded-2"):
        t, enu, velocity, _ = tracks[member]
        still = t >= event["since"] + 1.0
        moving = t < event["since"] - 10.0
        assert still.sum() > 100 and moving.sum() > 50
        assert np.ptp(enu[still, 0]) < 1e-3 and np.ptp(enu[still, 1]) < 1e-3
        assert np.all(np.linalg.norm(velocity[still], axis=1) < 1e-6)
        assert np.all(np.linalg.norm(velocity[moving], axis=1) > 1.0)
        assert np.linalg.norm(enu[still][0, :2] - event["enu"]) < 5.0


def test_each_border_crossing_is_listed_once_with_its_time_and_direction(small):
    _, head, rows = small
    border_north = np.mean([p[1] for p in _border_enu(head)])  # an east-west line here
    tracks = tracks_of(rows)
    expected = []
    for target_id, (t, enu, _, _) in tracks.items():
        side = enu[:, 1] > border_north
        for k in np.flatnonzero(side[1:] != side[:-1]):
            fraction = (border_north - enu[k, 1]) / (enu[k + 1, 1] - enu[k, 1])
            expected.append((target_id, t[k] + fraction * (t[k + 1] - t[k]), bool(side[k + 1])))
    listed = [(c["target"], c["t"], c["direction"] == "outbound") for c in head["crossings"]]
    assert len(listed) == len(expected) >= 6
    for (a_id, a_t, a_out), (b_id, b_t, b_out) in zip(sorted(listed), sorted(expected),
                                                       strict=True):  # fmt: skip
        assert a_id == b_id and a_out == b_out
        assert a_t == pytest.approx(b_t, abs=0.3)
    classes = {c["class"] for c in head["crossings"]}
    assert classes == {"person", "vehicle", "animal"}


def _border_enu(head):
    origin = EnuFrame(**head["origin"])
    return [origin.from_geodetic(lat, lon, origin.alt)[:2] for lat, lon in head["border"]]


def test_the_tummo_scenario_holds_every_kind_of_event():
    config = load_config(TUMMO)
    first = config.posts[0]
    origin = EnuFrame(first.lat, first.lon, first.alt)
    targets = ground_targets(config, origin)
    head = header(config, origin, targets, [], {})
    assert len(config.posts) == 2 and len(config.drones) >= 3
    assert len({d.sysid for d in config.drones}) == len(config.drones)
    crossing_classes = {(c["class"], c["direction"]) for c in head["crossings"]}
    assert {("person", "inbound"), ("vehicle", "inbound"), ("vehicle", "outbound"),
            ("animal", "outbound")} <= crossing_classes  # fmt: skip
    (stranded,) = head["stationary"]
    assert stranded["class"] == "person"
    # Stationary long enough for a distress alert, and in open desert, away from the posts.
    assert config.start_utc + config.duration_s - stranded["since"] > 600
    assert math.hypot(*stranded["enu"]) > 1500


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["drones"][0].update(post="elsewhere"), "unknown post"),
        (lambda c: c["drones"][0].pop("centre"), "needs centre"),
        (lambda c: c["drones"].append(dict(c["drones"][0])), "must differ"),
        (lambda c: c["targets"][0].update(sped=1.0), "sped"),
        (lambda c: c["targets"][0].update(speed=-1.0), "greater than 0"),
        (lambda c: c["targets"][0].update(kind="goats"), "kind"),
    ],
)
def test_a_bad_scenario_file_is_refused_with_the_reason(change, message):
    with open(SMALL, "rb") as f:
        config = tomllib.load(f)
    change(config)
    with pytest.raises(ValidationError, match=message):
        ScenarioConfig.model_validate(config)


SCENES = sorted((PROJECT_ROOT / "configs" / "scenarios").glob("scene-*.toml"))


@pytest.mark.parametrize("path", SCENES, ids=[p.stem for p in SCENES])
def test_each_scene_is_short_and_its_multirotors_stay_on_station_to_the_end(path):
    """The suite's scenes run in real time: short; a loitering drone that went home after
    two turns would leave the last minute unwatched."""
    config = load_config(path)
    assert 90.0 <= config.duration_s <= 180.0
    for drone in config.drones:
        if drone.plan != "loiter":
            continue
        flight = drone_of(config, drone)
        centre = to_enu_of(config, drone)
        last = flight.trajectory.position[-1]
        assert np.hypot(*(last[:2] - centre)) < drone.radius + 30.0, (drone.sysid, last)
        assert last[2] > 0.8 * drone.altitude


def to_enu_of(config, drone):
    post = config.post(drone.post)
    return to_enu(EnuFrame(post.lat, post.lon, post.alt), [drone.centre, drone.centre])[0]


def test_warm_ground_is_in_the_truth_header_and_bad_ranges_are_refused():
    config = load_config(PROJECT_ROOT / "configs" / "scenarios" / "scene-clutter-1.toml")
    origin = EnuFrame(config.posts[0].lat, config.posts[0].lon, config.posts[0].alt)
    head = header(config, origin, ground_targets(config, origin), [], {})
    spots = head["warm_spots"]
    assert len(spots) == sum(area.count for area in config.warm_ground) == 60
    assert all(0.4 <= s["length_m"] <= 1.4 and 4.0 <= s["contrast_k"] <= 10.0 for s in spots)
    area = config.warm_ground[0].model_dump()
    with pytest.raises(ValidationError, match="size_m needs 0 < low <= high"):
        config.model_validate({**config.model_dump(), "warm_ground": [{**area, "size_m": (2, 1)}]})
