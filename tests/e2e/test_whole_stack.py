"""The whole stack on the small scenario, played live: mosquitto, HQ, the post's edge node,
its drone's telemetry and thermal camera from the simulator. HQ's fused picture and alerts
are scored against the scenario's ground truth. Thresholds are set from measured runs with
a margin; the figures measured are beside each.
"""

import time

import numpy as np
import pytest
from pyproj import Geod

from hq.store.sqlite import SqliteStore
from stack.deployment import Deployment, StackOptions
from tests.conftest import PROJECT_ROOT
from tests.e2e.scoring import Picture, Truth, score
from wire.geo import EnuFrame

pytestmark = pytest.mark.e2e

SKIP_S, UNTIL_S = 45.0, 150.0  # scenario seconds played: the crossings and the stranded group
PICTURE_S = (60.0, 133.0)  # scored window: everything in the camera's view
DWELL_S = 40.0
DISTRESS_RADIUS_M = 30.0  # HQ's default (hq/config.py): a stay is within this of its start


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    deployment = Deployment(PROJECT_ROOT / "configs" / "scenarios" / "small.toml", folder,
                            StackOptions(skip_s=SKIP_S, distress_dwell_s=DWELL_S))  # fmt: skip
    with deployment:
        epoch = deployment.live.epoch
        while time.time() < epoch + UNTIL_S:
            assert not deployment.failed(), deployment.failed()
            time.sleep(1.0)
    truth = Truth.read(deployment.truth_path)
    store = SqliteStore(deployment.database)
    yield truth, store, epoch
    store.close()


def picture_score(finished_run):
    truth, store, epoch = finished_run
    t0, t1 = epoch + PICTURE_S[0], epoch + PICTURE_S[1]
    picture = Picture.from_store(store, t0, t1)
    return score(truth, picture, t0, t1, classes={"person", "vehicle", "animal"})


def test_every_target_is_followed_at_hq_soon_after_it_appears(finished_run):
    result = picture_score(finished_run)
    # Measured 0-21 s over two runs (the pickup enters the view fast, the camels slowly).
    assert max(result.first_confirmation_s.values()) < 30.0, result


def test_fused_picture_scores(finished_run):
    result = picture_score(finished_run)
    # Measured over four runs: MOTA 0.65-0.72, IDF1 0.71-0.74, GOSPA 28-31 m (most of it
    # the camels and the pickup while the loitering drone looks away), 2-3 ID switches.
    assert result.mota > 0.5, result
    assert result.idf1 > 0.6, result
    assert result.gospa_mean < 40.0, result
    assert result.id_switches <= 10, result


def crossings_and_alerts(finished_run):
    truth, store, epoch = finished_run
    crossings = [c for c in truth.header["crossings"] if c["t"] < epoch + UNTIL_S - 5.0]
    alerts = [r.alert for r in store.alerts(limit=1000) if r.alert.alert_type == "border_crossing"]
    wanted = [c for c in crossings if c["class"] in ("person", "vehicle")]
    camels = [c for c in crossings if c["class"] == "animal"]
    assert wanted and camels, "the scenario must cross the border for this test to mean anything"
    return wanted, camels, alerts


def test_border_crossings_of_people_and_the_pickup_are_alerted(finished_run):
    wanted, _, alerts = crossings_and_alerts(finished_run)
    times = np.array([a.time for a in alerts])
    # The pickup's crossing and at least one of the walkers' (walking side by side they
    # may be one track) raise an alert within 10 s: measured within 1 s in two runs.
    for group in ({"pickup"}, {"walkers"}):
        group_times = [c["t"] for c in wanted if c["group"] in group]
        assert any(np.any(np.abs(times - t) < 10.0) for t in group_times), (group, alerts)


def test_camels_crossing_raise_no_alert(finished_run):
    truth, store, epoch = finished_run
    _, camels, alerts = crossings_and_alerts(finished_run)
    origin = truth.header["origin"]
    frame = EnuFrame(origin["lat"], origin["lon"], origin["alt"])
    kinds = truth.classes()
    # Every crossing alert is about the target nearest where it says the crossing was, at
    # the time it gives: that target must never be a camel.
    for alert in alerts:
        e, n, _ = frame.from_geodetic(alert.lat, alert.lon, origin["alt"])
        targets = truth.at(alert.time)
        nearest = min(targets, key=lambda k: np.hypot(*(targets[k] - (e, n))))
        assert kinds[nearest] != "animal", (nearest, alert, camels)


def test_the_stranded_group_raises_one_distress_alert_where_it_is(finished_run):
    truth, store, epoch = finished_run
    stranded = truth.header["stationary"][0]
    distress = [r.alert for r in store.alerts(limit=1000) if r.alert.alert_type == "distress"]
    assert len({a.alert_id for a in distress}) == 1, distress
    alert = distress[0]
    # HQ's stay starts where a track first comes within the radius of where it then
    # stays, so the last metres the group walked before stopping count towards the dwell:
    # the earliest alert is at 88 s; measured at 95 s in three runs, 134 s in one (HQ
    # gave the pair's track a new id as the pickup drove past at 94 s).
    assert alert.time >= within_radius_since(truth, stranded) + DWELL_S - 1.0
    *_, distance = Geod(ellps="WGS84").inv(stranded["lon"], stranded["lat"], alert.lon, alert.lat)
    assert distance < 20.0, distance


def within_radius_since(truth, stranded) -> float:
    """When every member of the stranded group was, from then on, within the distress
    radius of where the group stays (a truth row's time)."""
    members = [t["id"] for t in truth.header["targets"] if t["group"] == stranded["group"]]
    centre = np.array(stranded["enu"][:2])
    since = stranded["since"]
    for t, row in zip(truth.times[::-1], truth.rows[::-1], strict=True):
        if t > stranded["since"]:
            continue
        where = {x["id"]: np.array(x["enu"][:2]) for x in row["targets"]}
        if any(m not in where or np.hypot(*(where[m] - centre)) > DISTRESS_RADIUS_M
               for m in members):  # fmt: skip
            break
        since = t
    return since
