"""CoT events from fused tracks and distress alerts: the numbers in them (ce against a
Monte Carlo estimate, course and speed), the type tree, removals, emergencies, and a
streamer period that skips and counts bad records."""

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from hq.store.records import FusedTrack
from hq.tak import TakConfig, TakStreamer, cot
from wire.messages import Alert

pytestmark = pytest.mark.unit
NOW = 1_750_000_000.0
COVARIANCE = (25.0, 1.5, 0, 0, 1.5, 20.0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.4)


def a_track(gid=7, t=NOW - 2.0, target_class="person", status="confirmed", lat=22.8,
            lon=14.1, velocity=(3.0, -4.0), covariance=COVARIANCE):  # fmt: skip
    return FusedTrack(gid, t, lat, lon, 612.5, (10.0, 20.0, *velocity), covariance,
                      target_class, status, 0.9)  # fmt: skip


def a_distress(alert_id="distress-3", active=True, message="track 12 (Amal) still 40 min",
               lat=22.81, lon=14.12):  # fmt: skip
    return Alert(site="hq", node="fusion", alert_id=alert_id, alert_type="distress",
                 severity="critical", time=NOW - 60.0, message=message, lat=lat, lon=lon,
                 track_ids=[12], active=active)  # fmt: skip


def seconds(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def parsed(event):
    """The event as a consumer gets it: serialised, then parsed back."""
    return ET.fromstring(cot.to_bytes(event))


# -- ce: circular 1-sigma ---------------------------------------------------------------------


@pytest.mark.parametrize("cov", [
    [[25.0, 1.5], [1.5, 20.0]],  # nearly circular
    [[100.0, 30.0], [30.0, 12.0]],  # correlated and elongated
    [[400.0, 0.0], [0.0, 0.01]],  # almost a line
])  # fmt: skip
def test_ce_holds_the_share_of_a_one_sigma_circle_in_a_monte_carlo_run(cov):
    ce = cot.circular_error(cov)
    n = 400_000
    errors = np.random.default_rng(20240611).multivariate_normal([0.0, 0.0], cov, size=n)
    inside = np.mean(np.hypot(errors[:, 0], errors[:, 1]) <= ce)
    p = 1.0 - math.exp(-0.5)
    assert abs(inside - p) < 4.0 * math.sqrt(p * (1.0 - p) / n)  # 0.3935 within 4 binomial sigma


def test_ce_of_a_circular_error_is_its_sigma_and_scales_with_it():
    assert cot.circular_error([[9.0, 0.0], [0.0, 9.0]]) == pytest.approx(3.0, rel=1e-5)
    thin = cot.circular_error([[100.0, 0.0], [0.0, 1e-12]])
    assert thin == pytest.approx(10.0 * 0.5152, rel=1e-3)  # Φ⁻¹((1 + 0.3935) / 2) major sigmas
    assert cot.circular_error([[0.0, 0.0], [0.0, 0.0]]) == 0.0


def test_ce_from_the_table_matches_its_root_at_any_elongation():
    for ratio in np.random.default_rng(5).uniform(0.0, 1.0, 200):
        cov = np.diag([16.0, 16.0 * ratio**2])
        assert cot.circular_error(cov) == pytest.approx(4.0 * cot.ce_factor(ratio), rel=1e-5)


@pytest.mark.parametrize("cov", [[[1.0, 5.0], [5.0, 1.0]], [[math.nan, 0], [0, 1.0]]])
def test_ce_refuses_what_is_not_a_covariance(cov):
    with pytest.raises(ValueError):
        cot.circular_error(cov)


# -- course and speed ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ve", "vn", "course"), [
    (0.0, 2.0, 0.0), (2.0, 0.0, 90.0), (0.0, -2.0, 180.0), (-2.0, 0.0, 270.0),
    (math.sqrt(2.0), math.sqrt(2.0), 45.0), (-math.sqrt(2.0), math.sqrt(2.0), 315.0),
    (1.0, -math.sqrt(3.0), 150.0),
])  # fmt: skip
def test_course_is_clockwise_from_north_and_speed_the_norm(ve, vn, course):
    got_course, speed = cot.course_speed(ve, vn)
    assert got_course == pytest.approx(course)
    assert speed == pytest.approx(2.0)  # every case moves at 2 m/s


# -- types and affiliation ------------------------------------------------------------------------


@pytest.mark.parametrize(("target_class", "expected"), [
    ("person", "a-u-G"), ("vehicle", "a-u-G-E-V"), ("animal", "a-u-G"),
    ("aircraft", "a-u-A"), ("unknown", "a-u-G"),
])  # fmt: skip
def test_type_by_class_with_unknown_affiliation(target_class, expected):
    event = parsed(cot.track_event(a_track(target_class=target_class), NOW, 15.0))
    assert event.get("type") == expected


@pytest.mark.parametrize(("affiliation", "expected"), [
    ("friend", "a-f-G-E-V"), ("hostile", "a-h-G-E-V"), ("neutral", "a-n-G-E-V"),
    ("unknown", "a-u-G-E-V"), (None, "a-u-G-E-V"), ("suspect", "a-s-G-E-V"),
    ("pending", "a-p-G-E-V"), ("assumed_friend", "a-a-G-E-V"),
])  # fmt: skip
def test_an_operator_set_affiliation_overrides_the_second_letter(affiliation, expected):
    event = cot.track_event(a_track(target_class="vehicle"), NOW, 15.0, affiliation=affiliation)
    assert parsed(event).get("type") == expected


# -- the track event -----------------------------------------------------------------------------


def test_a_track_event_carries_uid_how_times_point_and_motion():
    track = a_track()
    event = parsed(cot.track_event(track, NOW, 15.0, altitude_sigma_m=8.0))
    assert (event.tag, event.get("version"), event.get("uid"), event.get("how")) == (
        "event", "2.0", "dunewatch-track-7", "m-f")  # fmt: skip
    assert seconds(event.get("time")) == seconds(event.get("start")) == pytest.approx(track.time)
    assert seconds(event.get("stale")) == pytest.approx(NOW + 15.0)  # from the send time
    point = event.find("point")
    assert float(point.get("lat")) == pytest.approx(22.8) and float(point.get("lon")) == 14.1
    assert float(point.get("hae")) == 612.5 and float(point.get("le")) == 8.0
    ce = cot.circular_error([[25.0, 1.5], [1.5, 20.0]])
    assert float(point.get("ce")) == pytest.approx(ce, abs=0.05) and 4.4 < ce < 5.0
    motion = event.find("detail/track")
    assert float(motion.get("course")) == pytest.approx(143.1, abs=0.05)  # east 3, south 4
    assert float(motion.get("speed")) == pytest.approx(5.0)


def test_the_uid_is_stable_across_updates_and_le_is_unknown_without_an_altitude_sigma():
    first = parsed(cot.track_event(a_track(t=NOW - 5), NOW - 4, 15.0))
    later = parsed(cot.track_event(a_track(t=NOW, lat=22.9, velocity=(0, 0)), NOW, 15.0))
    assert first.get("uid") == later.get("uid") == "dunewatch-track-7"
    assert float(later.find("point").get("le")) == cot.UNKNOWN_ERROR


def test_an_ended_track_is_sent_stale_now_so_tak_drops_it():
    ended = parsed(cot.track_event(a_track(status="ended"), NOW, 15.0))
    assert seconds(ended.get("stale")) == pytest.approx(NOW)
    removed = parsed(cot.removal(a_track(), NOW))
    assert removed.get("uid") == "dunewatch-track-7"
    assert seconds(removed.get("stale")) == pytest.approx(NOW)


@pytest.mark.parametrize("bad", [
    {"lat": math.nan}, {"lon": math.inf}, {"lat": 91.0}, {"velocity": (math.nan, 0.0)},
    {"covariance": (-25.0, *COVARIANCE[1:])},
])  # fmt: skip
def test_a_track_that_cannot_be_placed_is_refused(bad):
    with pytest.raises(ValueError):
        cot.track_event(a_track(**bad), NOW, 15.0)


# -- distress alerts -------------------------------------------------------------------------------


def test_a_distress_alert_becomes_an_emergency_with_no_personal_data():
    event = parsed(cot.alert_event(a_distress(), NOW, 15.0))
    assert (event.get("uid"), event.get("type")) == ("dunewatch-distress-distress-3", "b-a-o-tbl")
    assert seconds(event.get("stale")) == pytest.approx(NOW + 15.0)
    assert float(event.find("point").get("lat")) == pytest.approx(22.81)
    emergency = event.find("detail/emergency")
    assert emergency.get("type") == "911 Alert" and emergency.get("cancel") is None
    remarks = event.find("detail/remarks").text
    assert "stranded" in remarks and "22.81000N 14.12000E" in remarks
    text = cot.to_bytes(cot.alert_event(a_distress(), NOW, 15.0)).decode()
    assert "Amal" not in text and "track 12" not in text  # HQ's free text stays at HQ


def test_a_cleared_distress_alert_cancels_the_emergency_now():
    event = parsed(cot.alert_event(a_distress(active=False), NOW, 15.0))
    assert event.find("detail/emergency").get("cancel") == "true"
    assert seconds(event.get("stale")) == pytest.approx(NOW)


def test_a_distress_alert_to_verify_is_a_marker_not_an_emergency():
    verify = a_distress().model_copy(update={"severity": "warning"})
    event = parsed(cot.alert_event(verify, NOW, 15.0))
    assert event.get("type") == cot.VERIFY_TYPE != cot.EMERGENCY_TYPE
    assert event.find("detail/emergency") is None
    remarks = event.find("detail/remarks").text
    assert "Verify: possible stranded people at 22.81000N 14.12000E" in remarks
    cleared = parsed(cot.alert_event(verify.model_copy(update={"active": False}), NOW, 15.0))
    assert seconds(cleared.get("stale")) == pytest.approx(NOW)


def test_other_alerts_are_not_exported():
    crossing = a_distress().model_copy(update={"alert_type": "border_crossing"})
    assert cot.alert_event(crossing, NOW, 15.0) is None


# -- one streamer period (no socket) ------------------------------------------------------------


class ListSource:
    def __init__(self, tracks=(), alerts=(), labels=None):
        self.tracks, self.alerts, self.operator_labels = list(tracks), list(alerts), labels or {}

    def current_tracks(self):
        return self.tracks

    def open_alerts(self):
        return self.alerts

    def labels(self):
        return self.operator_labels

    def drones(self):
        return []


def a_streamer(source, **config):
    return TakStreamer(TakConfig(host="127.0.0.1", port=8087, period_s=5.0, **config), source)


def uids_and_stales(payloads):
    events = [ET.fromstring(p) for p in payloads]
    return {e.get("uid"): seconds(e.get("stale")) for e in events}


def test_a_period_skips_and_counts_bad_records_and_sends_the_rest():
    source = ListSource([a_track(1), a_track(2, lat=math.nan), a_track(3)],
                        [a_distress(lat=None, lon=None), a_distress("distress-4")])  # fmt: skip
    streamer = a_streamer(source)
    sent = uids_and_stales(streamer.poll(NOW))
    assert set(sent) == {"dunewatch-track-1", "dunewatch-track-3", "dunewatch-distress-distress-4"}
    assert streamer.counters.skipped == 2


def test_a_track_that_ends_or_vanishes_and_a_cleared_alert_are_removed_once():
    source = ListSource([a_track(1), a_track(2), a_track(3)], [a_distress()])
    streamer = a_streamer(source)
    streamer.poll(NOW)
    source.tracks = [a_track(1, status="ended", t=NOW + 1), a_track(3, t=NOW + 1)]
    source.alerts = []
    sent = uids_and_stales(streamer.poll(NOW + 5))
    assert sent == {"dunewatch-track-1": NOW + 5, "dunewatch-track-2": NOW + 5,
                    "dunewatch-distress-distress-3": NOW + 5,
                    "dunewatch-track-3": NOW + 5 + 15.0}  # fmt: skip
    assert set(uids_and_stales(streamer.poll(NOW + 10))) == {"dunewatch-track-3"}


def test_a_period_sends_at_most_max_events_newest_first():
    source = ListSource([a_track(gid, t=NOW - gid) for gid in range(10)])
    streamer = a_streamer(source, max_events=4)
    sent = uids_and_stales(streamer.poll(NOW))
    assert set(sent) == {f"dunewatch-track-{gid}" for gid in range(4)}
    assert streamer.counters.dropped == 6


def test_the_config_refuses_unknown_keys_and_other_modes():
    with pytest.raises(ValidationError):
        TakConfig(host="tak.local", port=8087, perod_s=1.0)
    with pytest.raises(ValidationError):
        TakConfig(host="tak.local", port=8087, mode="server")
    assert TakConfig(host="tak.local", port=8087, period_s=2.0, stale_factor=3.0).stale_s == 6.0


def test_the_store_source_keeps_an_active_distress_behind_many_newer_alerts(tmp_path):
    # 600 border crossings after the distress alert: a limit of 500 over all kinds would
    # leave it out, and the streamer would cancel it on the operators' TAK screens.
    from hq.store.records import IngestBatch
    from hq.store.sqlite import SqliteStore
    from hq.tak import StoreSource

    store = SqliteStore(tmp_path / "hq.db")
    crossings = [Alert(site="hq", node="fusion", alert_id=f"crossing-{k}", time=NOW + k,
                       alert_type="border_crossing", severity="warning", message="crossed",
                       lat=22.8, lon=14.2) for k in range(600)]  # fmt: skip
    store.commit_ingest(IngestBatch(NOW, alerts=[a_distress(), *crossings]))
    assert [a.alert_id for a in StoreSource(store, alert_limit=500).open_alerts()] == [
        "distress-3"]
    store.close()


def test_the_streamer_sends_what_operators_set_on_a_track():
    # The API's labels, as `hq run` hands them over: an affiliation and a class.
    from hq.store.records import TrackLabel

    labels = {7: TrackLabel(7, "hostile", "vehicle", "operator-1", NOW - 5.0),
              8: TrackLabel(8, None, "animal", "operator-1", NOW - 5.0)}  # fmt: skip
    source = ListSource([a_track(7, target_class="person"), a_track(8), a_track(9)],
                        labels=labels)  # fmt: skip
    events = [ET.fromstring(p) for p in a_streamer(source).poll(NOW)]
    types = {e.get("uid"): e.get("type") for e in events}
    assert types == {"dunewatch-track-7": "a-h-G-E-V", "dunewatch-track-8": "a-u-G",
                     "dunewatch-track-9": "a-u-G"}, types  # fmt: skip
    callsigns = {e.get("uid"): e.find("detail/contact").get("callsign") for e in events}
    assert callsigns["dunewatch-track-8"] == "animal 8"
