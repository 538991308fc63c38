"""Alerts that hold: crossings only from measured positions beyond a margin on both sides,
held against jitter, waiting for the class, never for animals; distress counted from the
stop, a verify alert for people found stationary, nothing for a warm rock."""

import numpy as np
import pytest

from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, Place, TrackView
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.0, 14.0, 600.0)


def geodetic(e, n):
    lat, lon, _ = FRAME.to_geodetic(e, n, 0.0)
    return float(lat), float(lon)


def config(**changes) -> AlertConfig:
    """An east-west border 1 km north of the post (home), a post's place around it."""
    settings = dict(border=(geodetic(-5000, 1000), geodetic(5000, 1000)),
                    home=geodetic(0, 0), places=(Place("post", *geodetic(0, 0), 300.0),),
                    distress_dwell_s=60.0)  # fmt: skip
    return AlertConfig(**(settings | changes))


def walk(detector, gid, points, t0=0.0, dt=1.0, **view):
    """Feed one track's points, a second apart; all events."""
    return [e for k, (e, n) in enumerate(points)
            for e in detector.update(TrackView(gid, t0 + k * dt, e, n, **view))]  # fmt: skip


def crossings(events):
    return [e for e in events if e.kind == "border_crossing"]


NORTHWARD = [(100.0, 1000.0 + d) for d in range(-40, 41, 4)]  # 40 m south to 40 m north


def test_a_measured_crossing_alerts_once_with_its_direction_and_the_crossing_point():
    detector = CrossingDetector(config(), FRAME)
    (event,) = crossings(walk(detector, 1, NORTHWARD, target_class="person"))
    assert event.details["direction"] == "outbound" and event.severity == "warning"
    assert event.time == pytest.approx(10.0, abs=0.01)  # at 1000 m north: the 11th point
    east, north, _ = FRAME.from_geodetic(*event.position, FRAME.alt)
    assert (east, north) == pytest.approx((100.0, 1000.0), abs=0.5)


def test_a_coasting_prediction_never_crosses():
    # The same path, but the track last took in a detection 30 m south of the line: its
    # state beyond that is a prediction (a corrupted velocity), which never counts.
    detector = CrossingDetector(config(), FRAME)
    events = []
    for k, (e, n) in enumerate(NORTHWARD):
        measured = min(float(k), 2.0)  # detections stop after the third point, 32 m south
        events += detector.update(TrackView(1, float(k), e, n, "person", measured=measured,
                                            velocity=(0.0, 4.0)))  # fmt: skip
    assert not crossings(events)
    # Measured again on the far side, it has crossed: a real detection there says so.
    events = detector.update(TrackView(1, 30.0, 100.0, 1040.0, "person", measured=30.0))
    assert [e.details["direction"] for e in crossings(events)] == ["outbound"]


def test_jitter_on_the_line_never_crosses_and_a_real_crossing_does():
    detector = CrossingDetector(config(crossing_margin_m=5.0), FRAME)
    rng = np.random.default_rng(3)
    wobble = [(50.0, 1000.0 + d) for d in rng.uniform(-4.9, 4.9, 200)]
    before = [(50.0, 990.0)]
    assert not crossings(walk(detector, 2, before + wobble, target_class="person"))
    # Without a margin, the same wobble is many crossings, held to one by the hold.
    loose = CrossingDetector(config(crossing_margin_m=0.0, crossing_hold_s=0.0), FRAME)
    assert len(crossings(walk(loose, 2, before + wobble, target_class="person"))) > 20


def test_a_track_alerted_is_held_against_turning_back_but_not_for_ever():
    detector = CrossingDetector(config(crossing_hold_s=30.0), FRAME)
    # A vehicle north of the line for 12 s, then in, out and in again within 3 s (a
    # jittering or jumping track): one alert.
    path = [(0.0, 1020.0)] * 12 + [(0.0, 980.0), (0.0, 1020.0), (0.0, 980.0), (0.0, 980.0)]
    events = crossings(walk(detector, 3, path, dt=1.0, target_class="vehicle"))
    assert [e.details["direction"] for e in events] == ["inbound"]
    # Out again a minute later: a crossing of its own.
    later = detector.update(TrackView(3, 80.0, 0.0, 1020.0, "vehicle"))  # crossed at ~48 s
    assert [e.details["direction"] for e in crossings(later)] == ["outbound"]


@pytest.mark.parametrize("policy, severity", [("alert", "warning"), ("lower", "info"),
                                              ("ignore", None)])  # fmt: skip
def test_a_crossing_of_an_unknown_class_waits_for_its_class_then_follows_the_policy(
        policy, severity):  # fmt: skip
    detector = CrossingDetector(config(unknown_crossings=policy, crossing_class_wait_s=15.0),
                                FRAME)  # fmt: skip
    events = walk(detector, 4, NORTHWARD, target_class="unknown")  # crosses at 10 s
    assert not crossings(events)  # 10 s after it, the class is still awaited
    events += walk(detector, 4, [(100.0, 1040.0)] * 12, t0=21.0, target_class="unknown")
    got = crossings(events)
    assert [e.severity for e in got] == ([severity] if severity else [])
    assert all(e.time == pytest.approx(10.0, abs=0.01) and e.details["class"] == "unknown"
               for e in got)  # fmt: skip


@pytest.mark.parametrize("later_class, alerted", [("animal", False), ("person", True)])
def test_a_class_known_while_the_crossing_waits_decides_it(later_class, alerted):
    detector = CrossingDetector(config(unknown_crossings="alert", crossing_class_wait_s=15.0),
                                FRAME)  # fmt: skip
    events = walk(detector, 5, NORTHWARD, target_class="unknown")
    # Its class for the rest of the wait, which ends 15 s after the crossing.
    events += walk(detector, 5, [(100.0, 1045.0)] * 3, t0=24.0, target_class=later_class)
    got = crossings(events)
    assert len(got) == int(alerted)
    if alerted:
        assert got[0].time == pytest.approx(10.0, abs=0.01)
        assert got[0].details["class"] == "person"


@pytest.mark.parametrize("first, then, alerted", [
    ("animal", "vehicle", True),  # a pickup's first blobs looked like an animal's
    ("person", "animal", False),  # a camel whose first blobs looked like a person's
    ("animal", "animal", False),
])  # fmt: skip
def test_a_young_tracks_crossing_is_decided_by_its_class_once_it_settles(first, then, alerted):
    # A track first seen 4 s before it crosses (at 10 s), its class changing at 12 s.
    detector = CrossingDetector(config(crossing_class_wait_s=10.0), FRAME)
    young = NORTHWARD[6:]
    events = walk(detector, 8, young[:6], t0=6.0, target_class=first)
    events += walk(detector, 8, young[6:] + [(100.0, 1040.0)] * 10, t0=12.0, target_class=then)
    got = crossings(events)
    assert len(got) == int(alerted)
    if alerted:
        assert got[0].time == pytest.approx(10.0, abs=0.01)
        assert got[0].details["class"] == then


@pytest.mark.parametrize("beliefs, alerted", [
    ({"animal": 1.0}, False),
    ({"person": 0.55, "animal": 0.45}, False),  # a camel it may well be: no people crossing
    ({"person": 0.7, "animal": 0.3}, True),
    ({"vehicle": 0.9, "unknown": 0.1}, True),
])  # fmt: skip
def test_animals_and_tracks_likely_animals_never_raise_a_crossing(beliefs, alerted):
    detector = CrossingDetector(config(unknown_crossings="alert"), FRAME)
    events = walk(detector, 6, NORTHWARD, target_class="unknown", class_probabilities=beliefs)
    events += walk(detector, 6, [(100.0, 1040.0)] * 12, t0=21.0, target_class="unknown",
                   class_probabilities=beliefs)  # fmt: skip
    assert len(crossings(events)) == int(alerted)


def test_a_group_track_alerts_with_its_count():
    detector = CrossingDetector(config(), FRAME)
    (event,) = crossings(walk(detector, 7, NORTHWARD, target_class="person", count=3))
    assert event.details["count"] == 3 and "group of 3" in event.message


# --- distress --------------------------------------------------------------------------------

STOP = np.array([2000.0, -2000.0])  # open desert, far from the post


def walker_who_stops(rng, speed=1.2, walked_s=60, stay_s=120, jitter=1.0):
    """(t, east, north): walks east at `speed` for walked_s, then stays at STOP."""
    points = [(float(t), *(STOP + [speed * (t - walked_s), 0.0])) for t in range(walked_s)]
    points += [(float(t), *(STOP + rng.normal(0, jitter, 2)))
               for t in range(walked_s, walked_s + stay_s)]  # fmt: skip
    return points


def feed(detector, gid, points, **view):
    return [e for t, e_, n in points for e in detector.update(TrackView(gid, t, e_, n, **view))]


def test_distress_counts_the_dwell_from_when_the_person_stopped():
    detector = DistressDetector(config(distress_dwell_s=60.0, distress_radius_m=30.0), FRAME)
    events = feed(detector, 1, walker_who_stops(np.random.default_rng(1)), target_class="person")
    raised = [e for e in events if e.change == "raised"]
    assert len(raised) == 1 and raised[0].severity == "critical"
    # Stopped at 60 s: raised at 120 s, less at most the stop radius walked at 1.2 m/s
    # (where it last moved to is within that radius of where it stops). Counting from when
    # the walker came within the 30 m stay radius would raise it 25 s early.
    assert 120.0 - 8.0 / 1.2 <= raised[0].time <= 121.0
    assert raised[0].details["seen_stopping"] and raised[0].details["people"] == 1


def test_people_found_stationary_raise_only_a_verify_alert_and_only_when_surely_people():
    rng = np.random.default_rng(2)
    still = [(float(t), *(STOP + rng.normal(0, 1.0, 2))) for t in range(120)]
    sure = DistressDetector(config(), FRAME)
    events = feed(
        sure, 1, still, target_class="person", class_probabilities={"person": 0.9, "unknown": 0.1}
    )
    (raised,) = [e for e in events if e.change == "raised"]
    assert raised.severity == "warning" and "verify" in raised.message
    assert not raised.details["seen_stopping"] and raised.time == pytest.approx(60.0)
    # Believed a person at 0.7 (enough for people seen stopping): not enough for people
    # never seen to move. A warm rock classed with a low confidence: never.
    for beliefs in ({"person": 0.7, "unknown": 0.3}, {"person": 0.3, "unknown": 0.7},
                    {"unknown": 1.0}):  # fmt: skip
        detector = DistressDetector(config(), FRAME)
        assert not feed(detector, 1, still, target_class="unknown", class_probabilities=beliefs)


def test_a_person_seen_stopping_at_a_lower_confidence_still_raises_distress():
    detector = DistressDetector(config(), FRAME)
    beliefs = {"person": 0.7, "unknown": 0.3}
    events = feed(detector, 1, walker_who_stops(np.random.default_rng(3)),
                  target_class="person", class_probabilities=beliefs)  # fmt: skip
    assert [e.severity for e in events if e.change == "raised"] == ["critical"]


def test_a_predicted_position_neither_moves_nor_stops_a_track():
    # A false track on a warm spot that coasts away with a wrong velocity and comes back:
    # its predictions are not moving, so it stays "found stationary" (verify only).
    detector = DistressDetector(config(), FRAME)
    events = []
    for t in range(120):
        coasting = 20 <= t < 30  # predicted from 18 s on at 4 m/s: 44 m away at 29 s
        drift, measured = (4.0 * (t - 18), 18.0) if coasting else (0.0, float(t))
        events += detector.update(
            TrackView(
                9,
                float(t),
                *(STOP + [drift, 0.0]),
                "person",
                measured=measured,
                velocity=(4.0, 0.0),
            )
        )
    assert [e.severity for e in events if e.change == "raised"] == ["warning"]


def test_a_group_is_one_alert_with_the_people_it_counts():
    detector = DistressDetector(config(), FRAME)
    rng = np.random.default_rng(4)
    events = []
    for t, e, n in walker_who_stops(rng):
        events += detector.update(TrackView(1, t, e, n, "person", count=3))
        events += detector.update(TrackView(2, t + 0.1, e + 5.0, n, "person"))
    alerts = {e.alert_id for e in events}
    assert len(alerts) == 1
    latest = [e for e in events if e.change in ("raised", "updated")][-1]
    assert latest.details["people"] == 4 and "4 people" in latest.message
    assert set(latest.track_ids) == {1, 2}


def test_stranded_people_found_again_under_a_new_id_keep_their_alert():
    detector = DistressDetector(config(), FRAME)
    points = walker_who_stops(np.random.default_rng(5))
    events = feed(detector, 1, points[:130], target_class="person")
    # The sensors lose the track at 130 s (it ends) and find the person again at 135 s.
    events += detector.update(TrackView(1, 130.0, *points[129][1:], "person", ended=True))
    later = [(t + 5.0, e, n) for t, e, n in points[130:]]
    events += feed(detector, 2, later, target_class="person")
    raised = [e for e in events if e.change == "raised"]
    assert len(raised) == 1 and raised[0].severity == "critical"
    # The new track takes over the stop at once (it does not start a dwell, nor a verify
    # alert, of its own): the standing alert now lists both ids.
    updated = [e for e in events if e.change == "updated"]
    assert updated and set(updated[0].track_ids) == {1, 2} and updated[0].time < 136.0
    assert updated[0].severity == "critical"
    assert all(e.alert_id == raised[0].alert_id for e in events)


# --- configuration ---------------------------------------------------------------------------

ALERT_SETTINGS = {
    "trace_back_s": 5.0, "measured_within_s": 0.5, "crossing_margin_m": 8.0,
    "crossing_hold_s": 45.0, "class_confidence": 0.6, "crossing_class_wait_s": 5.0,
    "unknown_crossings": "ignore",
    "animal_probability": 0.3, "distress_radius_m": 40.0, "distress_stop_radius_m": 6.0,
    "distress_dwell_s": 300.0, "distress_person_confidence": 0.7,
    "distress_verify_confidence": 0.9, "node_silence_s": 60.0, "battery_low": 0.3,
    "backlog_high": 500,
}  # fmt: skip


def test_every_alert_setting_goes_from_the_toml_into_the_running_detectors(tmp_path):
    import re
    import tomllib

    from hq.config import AlertSection, load_config
    from hq.run import build_ingest
    from hq.store.sqlite import SqliteStore
    from tests.conftest import PROJECT_ROOT

    defaults = AlertSection().model_dump()
    assert ALERT_SETTINGS.keys() == defaults.keys()
    assert all(ALERT_SETTINGS[name] != defaults[name] for name in defaults)
    shipped = (PROJECT_ROOT / "configs" / "hq.toml").read_text()
    assert tomllib.loads(shipped)["alerts"] == defaults  # the shipped file lists each one
    section = "[alerts]\n" + "".join(f"{name} = {value!r}\n".replace("'", '"')
                                     for name, value in ALERT_SETTINGS.items())  # fmt: skip
    text, replaced = re.subn(r"\[alerts\]\n(?:[^\[\n].*\n|\n)*", section + "\n", shipped)
    assert replaced == 1
    (tmp_path / "hq.toml").write_text(text)
    config = load_config(tmp_path / "hq.toml")
    with SqliteStore(tmp_path / "hq.db") as store:
        ingest = build_ingest(config, store)
    for detector in (ingest.crossings, ingest.distress, ingest.health):
        running = {name: getattr(detector.config, name) for name in ALERT_SETTINGS}
        assert running == ALERT_SETTINGS


def test_a_stop_radius_beyond_the_stay_radius_is_refused():
    from pydantic import ValidationError

    from hq.config import AlertSection

    with pytest.raises(ValidationError, match="distress_stop_radius_m"):
        AlertSection(distress_radius_m=10.0, distress_stop_radius_m=20.0)


def test_stays_of_ended_tracks_are_forgotten_once_no_new_id_could_take_them_over():
    detector = DistressDetector(config(distress_dwell_s=60.0), FRAME)
    for gid in range(1, 201):  # walkers passing by, each seen 3 s, then ended
        for t in range(3):
            detector.update(TrackView(gid, gid * 10.0 + t, 100.0 * gid, -3000.0, "person"))
        detector.update(TrackView(gid, gid * 10.0 + 3, 100.0 * gid, -3000.0, "person",
                                  ended=True))  # fmt: skip
    assert len(detector._stays.index) <= 60 / 10 + 2  # those ended within the dwell time
