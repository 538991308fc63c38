"""Hostile input at HQ ingest (hypothesis-generated): random bytes, random JSON, valid
batches broken one field at a time, another schema major, forged and misrouted topics,
oversized payloads. Each becomes a dead letter with its reason and its raw bytes, is
counted, and the next valid batch is still stored."""

import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hq.ingest import MAX_PAYLOAD, Received
from tests.unit.test_hq_ingest_group import make_ingest, received, track_batch
from wire import topics
from wire.messages import encode

pytestmark = pytest.mark.unit
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
TOPIC = topics.tracks("tummo", "post-1")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


class Harness:
    """One ingest on one database for all examples of a test; a fresh seq per valid batch."""

    def __init__(self, db: Path):
        self.db = db
        self.ingest = make_ingest(db)
        self.next_seq = 0

    def assert_dead_lettered(self, topic: str, payload: bytes, reason_part: str = "") -> None:
        letters_before = self.ingest.counters.dead_letters
        assert self.ingest.handle(topic, payload, 1.8e9) == "dead_letter"
        assert self.ingest.counters.dead_letters == letters_before + 1
        with sqlite3.connect(self.db) as conn:
            reason, stored, stored_topic, size, sha256 = conn.execute(
                "SELECT reason, payload, topic, payload_size, payload_sha256 FROM dead_letters "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()  # fmt: skip
        # The first bytes, and the size and hash of the whole message.
        assert stored == payload[:self.ingest.limits.dead_letter_bytes] and stored_topic == topic
        assert size == len(payload) and sha256 == hashlib.sha256(payload).hexdigest()
        assert reason.strip() and reason_part in reason

    def assert_still_ingesting(self) -> None:
        batch = track_batch(self.next_seq)
        self.next_seq += 1
        assert self.ingest.handle_many([received(batch)]) == ["stored"]
        assert self.ingest.store.already_seen("tummo/post-1", batch.seq)


@pytest.fixture
def harness():
    with tempfile.TemporaryDirectory() as workdir:
        h = Harness(Path(workdir) / "hq.db")
        yield h
        h.ingest.store.close()


@SETTINGS
@given(payload=st.binary(max_size=2000))
def test_random_bytes_are_dead_lettered(harness, payload):
    harness.assert_dead_lettered(TOPIC, payload)
    harness.assert_still_ingesting()


@SETTINGS
@given(value=json_values)
def test_random_json_is_dead_lettered(harness, value):
    harness.assert_dead_lettered(TOPIC, json.dumps(value).encode())
    harness.assert_still_ingesting()


# Ways to break one field of a valid batch, each a clear contract violation.
BREAKS = {
    "seq": -1, "site": "", "node": "has/slash", "frame_origin": [91.0, 0.0, 0.0],
    "tracks": "not a list", "kind": "track_batch_v2", "sent": "yesterday",
}
TRACK_BREAKS = {
    "lat": 123.0, "quality": 1.5, "status": "lost", "target_class": "person of interest",
    "position_covariance": [[4.0, 0.0]], "track_id": -3, "time": None, "hits": "many",
}


@SETTINGS
@given(field=st.sampled_from(sorted(BREAKS)), drop=st.booleans())
def test_a_batch_with_a_broken_or_missing_field_is_dead_lettered(harness, field, drop):
    message = json.loads(encode(track_batch(10_000)))
    if drop and field not in ("site", "node"):  # without them it would still be malformed
        del message[field]
    else:
        message[field] = BREAKS[field]
    harness.assert_dead_lettered(TOPIC, json.dumps(message).encode())
    harness.assert_still_ingesting()


@SETTINGS
@given(field=st.sampled_from(sorted(TRACK_BREAKS)), which=st.integers(0, 3))
def test_a_batch_with_one_broken_track_is_dead_lettered_whole(harness, field, which):
    message = json.loads(encode(track_batch(10_000)))
    message["tracks"][which][field] = TRACK_BREAKS[field]
    harness.assert_dead_lettered(TOPIC, json.dumps(message).encode(), "invalid")
    assert not harness.ingest.store.already_seen("tummo/post-1", 10_000)
    harness.assert_still_ingesting()


@SETTINGS
@given(major=st.integers(2, 10**6), minor=st.integers(0, 99))
def test_another_schema_major_is_dead_lettered_as_unsupported(harness, major, minor):
    message = json.loads(encode(track_batch(10_000)))
    message["schema_version"] = f"{major}.{minor}"
    harness.assert_dead_lettered(TOPIC, json.dumps(message).encode(), "unsupported version")
    harness.assert_still_ingesting()


@SETTINGS
@given(node=st.from_regex(r"\A[a-z0-9]{1,12}\Z"),  # never "post-1": no hyphen
       channel=st.sampled_from(["tracks", "status", "alerts", "telemetry"]))  # fmt: skip
def test_a_batch_on_another_nodes_or_channels_topic_is_dead_lettered(harness, node, channel):
    payload = encode(track_batch(10_000))  # post-1's batch
    if channel == "tracks":
        harness.assert_dead_lettered(topics.tracks("tummo", node), payload, "topic")
    else:
        harness.assert_dead_lettered(topics.topic("tummo", "post-1", channel), payload,
                                     "channel")  # fmt: skip
    harness.assert_still_ingesting()


@SETTINGS
@given(topic=st.text(max_size=60))
def test_a_message_on_a_topic_outside_the_scheme_is_dead_lettered(harness, topic):
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "dunewatch" and parts[4] == "tracks":
        return  # a well-formed tracks topic of some node: covered above
    harness.assert_dead_lettered(topic, encode(track_batch(10_000)))
    harness.assert_still_ingesting()


def test_an_oversized_message_is_refused_unread_and_kept_truncated(harness):
    message = json.loads(encode(track_batch(10_000)))
    message["padding"] = "x" * MAX_PAYLOAD  # extra fields are allowed, the size is not
    harness.assert_dead_lettered(TOPIC, json.dumps(message).encode(), "exceeds")
    harness.assert_still_ingesting()


def test_junk_inside_a_group_does_not_hold_up_the_valid_batches_around_it(harness):
    junk = [(TOPIC, b"\x00\xff"), (TOPIC, b"{}"), ("not/a/topic", encode(track_batch(7)))]
    group = [received(track_batch(0)), *(Received(t, p, 1.8e9) for t, p in junk),
             received(track_batch(1))]
    assert harness.ingest.handle_many(group) == ["stored"] + ["dead_letter"] * 3 + ["stored"]
    assert harness.ingest.counters.groups == 1 and harness.ingest.counters.dead_letters == 3
