"""Physical bounds at HQ ingest: what a valid-looking message may not claim. Each case is
dead-lettered with its reason, counted as stale, future or out of bounds, and the next
valid batch is still stored (a real SQLite file)."""

import json
import math

import pytest

from hq.config import IngestSection
from hq.ingest import Ingest
from tests.unit.test_hq_ingest_group import ORIGIN, START, make_ingest, track_batch
from wire import topics
from wire.messages import INT64_MAX, encode

pytestmark = pytest.mark.unit
TOPIC = topics.tracks("tummo", "post-1")


@pytest.fixture
def ingest(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    ingest.bounds.region = ORIGIN[:2]  # as `python -m hq run` sets it: HQ's origin
    yield ingest
    ingest.store.close()


def broken(change) -> bytes:
    """Seq 0's batch as JSON text, changed by `change(message)` (a dict)."""
    message = json.loads(encode(track_batch(0)))
    change(message)
    return json.dumps(message, allow_nan=True).encode()


def assert_refused(ingest: Ingest, payload: bytes, counter: str, reason: str) -> None:
    before = getattr(ingest.counters, counter)
    assert ingest.handle(TOPIC, payload, START) == "dead_letter"
    assert getattr(ingest.counters, counter) == before + 1
    [letter] = ingest.store.dead_letters(limit=1)
    assert letter.reason.startswith("out of bounds") and reason in letter.reason, letter.reason
    assert not ingest.store.already_seen("tummo/post-1", 0)
    # The post's next batch is taken as usual.
    assert ingest.handle(TOPIC, encode(track_batch(1)), START + 1) == "stored"


def track(k: int, field: str, value):
    def change(message):
        message["tracks"][k][field] = value

    return change


@pytest.mark.parametrize("when, counter", [(1e308, "future"), (START + 301, "future"),
                                           (START - 8 * 86_400, "stale"), (0.0, "stale")])
def test_a_track_time_outside_the_window_around_hqs_clock_is_refused(ingest, when, counter):
    assert_refused(ingest, broken(track(2, "time", when)), counter, "track time")


def test_a_batch_sent_far_ahead_is_refused_and_a_small_skew_accepted(ingest):
    assert_refused(ingest, broken(lambda m: m.update(sent=START + 3600)), "future", "sent")
    skewed = broken(lambda m: m.update(seq=7, sent=START + 100))  # within max_skew_s (300)
    assert ingest.handle(TOPIC, skewed, START) == "stored"


def test_the_window_is_configurable(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    ingest.bounds.limits = IngestSection(max_skew_s=1.0, max_age_s=10.0)
    assert ingest.handle(TOPIC, broken(track(0, "time", START + 5)), START) == "dead_letter"
    assert ingest.handle(TOPIC, broken(track(0, "time", START - 20)), START) == "dead_letter"
    assert (ingest.counters.future, ingest.counters.stale) == (1, 1)
    ingest.store.close()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["alt", "time"])
def test_nan_and_infinity_literals_are_refused(ingest, literal, field):
    payload = broken(track(1, field, "MARK")).replace(b'"MARK"', literal.encode())
    assert_refused(ingest, payload, "out_of_bounds", "not finite")


@pytest.mark.parametrize("change, reason", [
    (track(0, "alt", 1e308), "altitude"),
    (track(0, "position_enu", [1e308, 0.0]), "ENU distance"),
    (track(0, "velocity_enu", [0.0, 5e3]), "speed"),
    (track(3, "lat", ORIGIN[0] + 2.0), "distance from its post"),
    (lambda m: m.update(frame_origin=[-30.0, 120.0, 0.0]), "frame origin"),
])  # fmt: skip
def test_positions_and_speeds_a_target_cannot_have_are_refused(ingest, change, reason):
    assert_refused(ingest, broken(change), "out_of_bounds", reason)


@pytest.mark.parametrize("field, matrix, reason", [
    ("position_covariance", [[-4.0, 0.0], [0.0, 4.0]], "positive semi-definite"),
    ("position_covariance", [[4.0, 3.0], [0.0, 4.0]], "not symmetric"),
    ("velocity_covariance", [[1.0, 2.0], [2.0, 1.0]], "positive semi-definite"),
    ("state_covariance", [[4, 0, 0, 0], [0, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1e-3]],
     "positive semi-definite"),
    ("state_covariance", [[4, 0, 1, 0], [0, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
     "not symmetric"),
])  # fmt: skip
def test_a_covariance_that_is_no_covariance_is_refused(ingest, field, matrix, reason):
    assert_refused(ingest, broken(track(2, field, matrix)), "out_of_bounds", reason)


def test_a_valid_full_state_covariance_with_round_off_is_taken(ingest):
    eps = 1e-12
    correlated = [[4.0, 0.0, 0.5, 0.0], [0.0, 4.0, 0.0, 0.5], [0.5 + eps, 0.0, 1.0, 0.0],
                  [0.0, 0.5, 0.0, 1.0]]  # fmt: skip
    payload = broken(track(2, "state_covariance", correlated))
    assert ingest.handle(TOPIC, payload, START) == "stored"


@pytest.mark.parametrize("field", ["track_id", "hits"])
def test_integers_a_database_cannot_hold_are_refused_as_invalid(ingest, field):
    payload = broken(track(0, field, INT64_MAX + 1))
    assert ingest.handle(TOPIC, payload, START) == "dead_letter"
    [letter] = ingest.store.dead_letters(limit=1)
    assert letter.reason.startswith("invalid") and field in letter.reason
    at_limit = broken(lambda m: (m["tracks"][0].update(track_id=INT64_MAX), m.update(seq=3)))
    assert ingest.handle(TOPIC, at_limit, START) == "stored"
    assert ingest.handle(TOPIC, broken(lambda m: m.update(seq=2**63)), START) == "dead_letter"


def test_status_telemetry_and_alerts_are_held_to_the_same_bounds(ingest):
    def status(**changes) -> bytes:
        message = {"kind": "node_status", "schema_version": "1.1", "site": "tummo",
                   "node": "post-1", "state": "online", "time": START, "software_version": "1",
                   **changes}  # fmt: skip
        return json.dumps(message, allow_nan=True).encode()

    status_topic = topics.status("tummo", "post-1")
    assert ingest.handle(status_topic, status(), START) == "stored"
    assert ingest.handle(status_topic, status(time=1e308), START) == "dead_letter"
    assert ingest.handle(status_topic, status(lat=-40.0, lon=100.0), START) == "dead_letter"
    telemetry = {"kind": "vehicle_telemetry", "schema_version": "1.1", "site": "tummo",
                 "node": "post-1", "sysid": 1, "time": START, "lat": ORIGIN[0],
                 "lon": ORIGIN[1], "alt": 700.0, "velocity_enu": [1.0, 0.0, math.inf],
                 "heading_deg": 0.0}  # fmt: skip
    payload = json.dumps(telemetry, allow_nan=True).encode()
    assert ingest.handle(topics.telemetry("tummo", "post-1"), payload, START) == "dead_letter"
    alert = {"kind": "alert", "schema_version": "1.1", "site": "tummo", "node": "post-1",
             "alert_id": "a1", "alert_type": "node", "severity": "info", "time": START + 9e7,
             "message": "from the future"}  # fmt: skip
    payload = json.dumps(alert).encode()
    assert ingest.handle(topics.alerts("tummo", "post-1"), payload, START) == "dead_letter"
    assert (ingest.counters.future, ingest.counters.out_of_bounds) == (2, 2)
