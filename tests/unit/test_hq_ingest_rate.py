"""HQ's per-post rate limit and the refusal of retained messages, on a real SQLite file: the
excess of a flooding post is refused and counted, kept as a short dead letter (size and
hash, no payload), an alert names the post and is cleared when it calms down; another
post is not touched."""

import hashlib
import json

import pytest

from hq.config import IngestSection
from hq.ingest import Received
from hq.ingest.rate import PostRateLimit
from tests.unit.test_hq_ingest_group import START, make_ingest, received, track_batch
from wire import topics
from wire.messages import NodeStatus, encode

pytestmark = pytest.mark.unit


def test_a_bucket_allows_its_burst_then_its_rate():
    limit = PostRateLimit(rate_per_s=10.0, burst=5)
    assert [limit.allow("a/b", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow("c/d", 0.0)  # another post has its own bucket
    assert limit.allow("a/b", 0.1) and not limit.allow("a/b", 0.1)  # one token in 0.1 s
    assert [limit.allow("a/b", 10.0) for _ in range(6)] == [True] * 5 + [False]  # no more
    assert limit.refused("a/b", 10.0) and not limit.refused("a/b", 11.0)
    assert limit.recovered(70.0) == [] and limit.recovered(71.0) == ["a/b"]


def test_a_flooding_post_is_limited_alerted_and_cleared_and_another_is_not(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    ingest.rate = PostRateLimit(rate_per_s=2.0, burst=3, quiet_s=30.0)
    flood = [received(track_batch(seq)) for seq in range(10)]  # all at once (START + seq)
    flood = [Received(m.topic, m.payload, START) for m in flood]
    other = Received(topics.tracks("tummo", "post-2"), encode(track_batch(0, "post-2")), START)
    outcomes = ingest.handle_many([*flood, other])
    assert outcomes == ["stored"] * 3 + ["dead_letter"] * 7 + ["stored"]
    assert ingest.counters.rate_limited == 7
    letters = ingest.store.dead_letters(limit=100)
    assert len(letters) == 7 and all(d.reason.startswith("rate limit") for d in letters)
    newest = letters[0]  # seq 9's
    assert newest.payload == b"" and newest.payload_size == len(flood[9].payload)
    assert newest.payload_sha256 == hashlib.sha256(flood[9].payload).hexdigest()
    [alert] = ingest.store.alerts(limit=10)
    assert alert.alert.alert_id == "rate-limit-tummo~post-1" and alert.alert.active
    ingest.tick(START + 10)
    assert ingest.store.alerts(limit=10)[0].alert.active  # still within quiet_s of the flood
    ingest.tick(START + 31)
    assert not ingest.store.alerts(limit=10)[0].alert.active
    ingest.store.close()


def test_a_retained_message_is_refused_but_on_a_status_topic(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    batch = received(track_batch(0))
    retained = Received(batch.topic, batch.payload, batch.received, retained=True)
    assert ingest.handle_many([retained]) == ["dead_letter"]
    assert ingest.counters.retained_refused == 1
    assert ingest.store.dead_letters(limit=1)[0].reason.startswith("refused: a retained")
    status = NodeStatus(site="tummo", node="post-1", state="online", time=START,
                        software_version="1")  # fmt: skip
    kept = Received(topics.status("tummo", "post-1"), encode(status), START, retained=True)
    assert ingest.handle_many([kept]) == ["stored"]
    ingest.store.close()


def test_a_dead_letter_keeps_the_configured_prefix_of_a_large_payload(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    ingest.limits = IngestSection(dead_letter_bytes=1000)
    junk = json.dumps({"junk": "y" * 5_000_000}).encode()  # over the 4 MiB HQ reads
    assert ingest.handle(topics.tracks("tummo", "post-1"), junk, START) == "dead_letter"
    [letter] = ingest.store.dead_letters(limit=1)
    assert letter.payload == junk[:1000] and letter.payload_size == len(junk)
    assert letter.payload_sha256 == hashlib.sha256(junk).hexdigest()
    ingest.store.close()
