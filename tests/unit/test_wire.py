"""The wire contract: round trips, versions, malformed input, topics."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import topics
from wire.messages import (
    SCHEMA_VERSION,
    Alert,
    CameraFootprint,
    NodeStatus,
    Track,
    TrackBatch,
    UnsupportedVersion,
    VehicleTelemetry,
    decode,
    encode,
)

pytestmark = pytest.mark.unit

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def a_track(**changes):
    fields = dict(
        track_id=7, time=1767225600.25, lat=22.7, lon=14.18, alt=700.0,
        position_enu=(120.5, -33.25), velocity_enu=(1.4, 0.1),
        position_covariance=[[4.0, 0.5], [0.5, 3.0]],
        velocity_covariance=[[0.2, 0.0], [0.0, 0.2]],
        target_class="person", status="confirmed", quality=0.97, hits=12, sensors=["cam-1"],
    )  # fmt: skip
    fields.update(changes)
    return Track(**fields)


def a_batch(**changes):
    fields = dict(site="tummo", node="west-1", seq=41, sent=1767225600.5,
                  frame_origin=(22.84, 14.13, 620.0), tracks=[a_track()])  # fmt: skip
    fields.update(changes)
    return TrackBatch(**fields)


@settings(max_examples=50, deadline=None)
@given(e=finite, n=finite, ve=finite, vn=finite, seq=st.integers(0, 2**62))
def test_a_batch_survives_the_wire_exactly(e, n, ve, vn, seq):
    batch = a_batch(seq=seq, tracks=[a_track(position_enu=(e, n), velocity_enu=(ve, vn))])
    assert decode(encode(batch)) == batch


def test_a_1_0_track_still_reads_and_the_1_1_fields_take_their_defaults():
    payload = json.loads(encode(a_batch()))
    payload["schema_version"] = "1.0"
    for name in ("state_covariance", "class_probabilities", "count", "last_measured"):
        del payload["tracks"][0][name]
    track = decode(json.dumps(payload)).tracks[0]
    assert (track.state_covariance, track.class_probabilities, track.count,
            track.last_measured) == (None, {}, 1, None)  # fmt: skip


def a_telemetry(**changes) -> VehicleTelemetry:
    fields = dict(site="tummo", node="west-1", sysid=2, time=1767225600.0, lat=22.85,
                  lon=14.14, alt=900.0, velocity_enu=(3.0, 4.0, 0.0), heading_deg=37.0,
                  battery_remaining=0.6, link_connected=True, packet_loss=0.05,
                  footprints=[CameraFootprint(camera="d2-thermal", corners=[
                      (14.13, 22.86), (14.15, 22.86), None, (14.13, 22.84)])])  # fmt: skip
    fields.update(changes)
    return VehicleTelemetry(**fields)


def test_telemetry_with_footprints_survives_the_wire_and_a_1_1_one_still_reads():
    telemetry = a_telemetry()
    assert decode(encode(telemetry)) == telemetry
    assert telemetry.footprints[0].corners[2] is None  # a corner above the horizon
    payload = json.loads(encode(telemetry))
    payload["schema_version"] = "1.1"
    for name in ("footprints", "battery_remaining", "link_connected", "packet_loss"):
        del payload[name]
    old = decode(json.dumps(payload))
    assert (old.footprints, old.battery_remaining, old.link_connected,
            old.packet_loss) == ([], None, None, None)  # fmt: skip


@pytest.mark.parametrize("corners, why", [
    ([(14.1, 22.8)] * 3, "at least 4"),
    ([(14.1, 22.8)] * 5, "at most 4"),
    ([(14.1, 95.0), (14.1, 22.8), (14.1, 22.8), (14.1, 22.8)], "less than or equal to 90"),
    ([(190.0, 22.8), (14.1, 22.8), (14.1, 22.8), (14.1, 22.8)], "less than or equal to 180"),
])  # fmt: skip
def test_a_footprint_has_four_corners_on_the_globe(corners, why):
    payload = json.loads(encode(a_telemetry()))
    payload["footprints"][0]["corners"] = corners
    with pytest.raises(ValueError, match=why):
        decode(json.dumps(payload))


def test_class_probabilities_must_sum_to_one():
    believed = a_track(class_probabilities={"person": 0.7, "animal": 0.25, "unknown": 0.05})
    assert believed.class_probabilities["person"] == 0.7
    with pytest.raises(ValueError, match="sum to 0.9"):
        a_track(class_probabilities={"person": 0.6, "animal": 0.3})
    with pytest.raises(ValueError):
        a_track(class_probabilities={"person": 1.2, "animal": -0.2})
    with pytest.raises(ValueError):
        a_track(class_probabilities={"giraffe": 1.0})


def test_a_group_counts_at_least_one_object():
    assert a_track(count=3).count == 3
    with pytest.raises(ValueError):
        a_track(count=0)


@pytest.mark.parametrize("message", [
    NodeStatus(site="tummo", node="west-1", state="birth", time=1.0, software_version="0.1"),
    VehicleTelemetry(site="tummo", node="west-1", sysid=1, time=1.0, lat=22.8, lon=14.1,
                     alt=770.0, velocity_enu=(1.0, 2.0, 0.0), heading_deg=30.0),
    Alert(site="tummo", node="west-1", alert_id="outbox-1", alert_type="outbox",
          severity="warning", time=1.0, message="outbox full: dropped the oldest batch"),
])  # fmt: skip
def test_every_kind_round_trips_and_says_its_version(message):
    payload = encode(message)
    assert json.loads(payload)["schema_version"] == SCHEMA_VERSION == "1.2"
    assert decode(payload) == message
    assert decode(payload, type(message)) == message


def test_another_major_version_is_refused_with_a_clear_reason():
    payload = json.loads(encode(a_batch()))
    payload["schema_version"] = "2.0"
    with pytest.raises(UnsupportedVersion, match="'2.0' is not understood here .* 1.x"):
        decode(json.dumps(payload))


def test_a_newer_minor_version_with_new_fields_still_reads():
    payload = json.loads(encode(a_batch()))
    payload["schema_version"] = "1.3"
    payload["weather"] = "sandstorm"
    payload["tracks"][0]["heading_confidence"] = 0.5
    batch = decode(json.dumps(payload))
    assert batch.seq == 41 and batch.schema_version == "1.3"


@pytest.mark.parametrize("spoil, reason", [
    (lambda p: p["tracks"][0].update(lat=91.0), "less than or equal to 90"),
    (lambda p: p.pop("seq"), "seq"),
    (lambda p: p.update(node="west/1"), "pattern"),
    (lambda p: p["tracks"][0].update(status="lost"), "status"),
    (lambda p: p["tracks"][0].update(position_covariance=[[1.0, 0.0]]), "position_covariance"),
    (lambda p: p.update(kind="weather_report"), "unknown message kind"),
])  # fmt: skip
def test_malformed_messages_are_refused_with_the_reason(spoil, reason):
    payload = json.loads(encode(a_batch()))
    spoil(payload)
    with pytest.raises(ValueError, match=reason):
        decode(json.dumps(payload))


def test_bytes_that_are_not_a_message_are_refused():
    for junk in (b"", b"\xff\xfe", b"[1, 2]", b'{"kind": "track_batch"}'):
        with pytest.raises(ValueError):
            decode(junk)


def test_asking_for_one_kind_refuses_another():
    status = NodeStatus(site="s", node="n", state="online", time=1.0, software_version="0.1")
    with pytest.raises(ValueError, match="expected a TrackBatch"):
        decode(encode(status), TrackBatch)


def test_topics_build_and_parse_back():
    name = topics.tracks("tummo", "west-1")
    assert name == "dunewatch/v1/tummo/west-1/tracks"
    assert topics.parse(name) == ("tummo", "west-1", "tracks")
    assert topics.parse(topics.status("a", "b")).channel == "status"
    assert topics.all_nodes("tracks") == "dunewatch/v1/+/+/tracks"


@pytest.mark.parametrize("site, node", [("tu/mmo", "n"), ("s", "+"), ("s", "#"), ("", "n")])
def test_names_that_would_escape_their_topic_are_refused(site, node):
    with pytest.raises(ValueError, match="cannot be part of a topic"):
        topics.tracks(site, node)


def test_a_foreign_topic_does_not_parse():
    for name in ("dunewatch/v2/s/n/tracks", "dunewatch/v1/s/n/video", "dunewatch/v1/s/tracks"):
        with pytest.raises(ValueError):
            topics.parse(name)

