"""A broken or hostile post against a real mosquitto and `python -m hq run`: what it sends is
dead-lettered and acknowledged, and the other posts' batches are still stored; a stalled
ingest shows in /readyz and raises an alert."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx2 as httpx
import numpy as np
import pytest

from hq.broker import free_tcp_port
from stack.process import wait_http_ready
from tests.integration.test_hq_ingest import (  # noqa: F401 (deployment is a fixture)
    batch,
    deployment,
    publisher,
    start_hq,
    wait_for_rows,
)
from wire import topics
from wire.messages import encode

pytestmark = pytest.mark.integration
RECEIVE_MAXIMUM = 2000  # what HQ's session lets the broker have unacknowledged


def poisoned(node: str, seq: int, rng, start: float) -> bytes:
    """A valid-looking batch whose first track id no database integer holds."""
    message = json.loads(encode(batch(node, seq, rng, start)))
    message["tracks"][0]["track_id"] = 2**63
    return json.dumps(message).encode()


def count(db, sql) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchone()[0]


def test_unstorable_batches_of_one_post_do_not_stop_another_posts(deployment):  # noqa: F811
    tmp_path, port, passwords, config, _ = deployment
    db, n_poison = tmp_path / "hq.db", RECEIVE_MAXIMUM + 100
    hq = start_hq(config, passwords)
    west, east = (publisher(node, port, passwords) for node in ("west-1", "east-1"))
    rng, start = np.random.default_rng(7), time.time()
    try:
        # More than the broker lets HQ hold unacknowledged: had any stayed so, HQ would get
        # nothing more from anyone.
        sent = [west.publish(topics.tracks("tummo", "west-1"), poisoned("west-1", s, rng, start),
                             qos=1) for s in range(n_poison)]  # fmt: skip
        for info in sent:
            info.wait_for_publish(60)
        for seq in range(20):
            message = encode(batch("east-1", seq, rng, start))
            east.publish(topics.tracks("tummo", "east-1"), message, qos=1).wait_for_publish(30)
        stored = wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches "
                                   "WHERE node_key = 'tummo/east-1'", 20, timeout=120)  # fmt: skip
        letters = wait_for_rows(db, "SELECT COUNT(*) FROM dead_letters", n_poison, timeout=120)
        assert stored == 20 and letters == n_poison
        assert hq.stop() == 0, hq.tail()
        # Every poisoned message was acknowledged: a restarted HQ gets none of them again.
        hq = start_hq(config, passwords)
        east.publish(topics.tracks("tummo", "east-1"), encode(batch("east-1", 20, rng, start)),
                     qos=1).wait_for_publish(30)  # fmt: skip
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 21, timeout=60) == 21
    finally:
        stopped = hq.stop()
        west.loop_stop()
        east.loop_stop()
    assert stopped == 0, hq.tail()
    assert count(db, "SELECT COUNT(*) FROM dead_letters") == n_poison
    assert count(db, "SELECT COUNT(*) FROM seen_batches WHERE node_key = 'tummo/west-1'") == 0
    assert count(db, "SELECT COUNT(*) FROM dead_letters WHERE topic LIKE '%west-1/tracks' "
                     "AND reason LIKE '%track_id%'") > 0  # fmt: skip


def test_a_message_waiting_too_long_for_its_commit_makes_hq_not_ready_and_alerts(
        deployment):  # noqa: F811  # fmt: skip
    tmp_path, port, passwords, config, _ = deployment
    db, api_port = tmp_path / "hq.db", free_tcp_port()
    config.write_text(config.read_text() + f"""
[ingest]
max_unacknowledged_age_s = 2.0
[api]
port = {api_port}
""")
    hq = start_hq(config, passwords)
    url = f"http://127.0.0.1:{api_port}"
    wait_http_ready(f"{url}/readyz", hq)
    west = publisher("west-1", port, passwords)
    rng, start = np.random.default_rng(8), time.time()
    try:
        assert httpx.get(f"{url}/readyz").json()["checks"]["ingest"] is True
        # Another writer holds the database: HQ cannot commit, so cannot acknowledge.
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        for seq in range(3):
            message = encode(batch("west-1", seq, rng, start))
            west.publish(topics.tracks("tummo", "west-1"), message, qos=1).wait_for_publish(30)
        not_ready = poll_readyz(url, 503, timeout=30)
        blocker.close()
        ready_again = poll_readyz(url, 200, timeout=60)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 3) == 3
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stall_alert(db) in (None, True):
            time.sleep(0.2)
    finally:
        stopped = hq.stop()
        west.loop_stop()
    assert not_ready == {"store": True, "tokens": True, "live_feed": True, "ingest": False}
    assert ready_again["ingest"] is True
    assert stopped == 0, hq.tail()
    assert stall_alert(db) is False  # raised while stalled, then cleared
    assert any("ingest stalled" in line for line in hq.lines)


def poll_readyz(url: str, status: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/readyz", timeout=10)
        if response.status_code == status:
            return response.json()["checks"]
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered {status}: {response.json()}")


def stall_alert(db) -> bool | None:
    """Whether HQ's ingest-stalled alert is active; None when there is none."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT alert FROM alerts WHERE alert_id = 'ingest-stalled'").fetchone()
    return None if row is None else json.loads(row[0])["active"]


def test_a_retained_junk_message_is_refused_once_not_at_every_reconnect(deployment):  # noqa: F811
    tmp_path, port, passwords, config, _ = deployment
    db = tmp_path / "hq.db"
    hq = start_hq(config, passwords)
    west = publisher("west-1", port, passwords)
    rng, start = np.random.default_rng(9), time.time()
    try:
        west.publish(topics.tracks("tummo", "west-1"), b"junk kept by the broker", qos=1,
                     retain=True).wait_for_publish(30)  # fmt: skip
        west.publish(topics.status("tummo", "west-1"), status_of("west-1", time.time()), qos=1,
                     retain=True).wait_for_publish(30)  # fmt: skip
        assert wait_for_rows(db, "SELECT COUNT(*) FROM dead_letters", 1) == 1
        assert wait_for_rows(db, "SELECT COUNT(*) FROM nodes WHERE state = 'online'", 1) == 1
        for _ in range(2):  # HQ reconnects to its session, twice
            assert hq.stop() == 0, hq.tail()
            hq = start_hq(config, passwords)
        message = encode(batch("west-1", 0, rng, start))
        west.publish(topics.tracks("tummo", "west-1"), message, qos=1).wait_for_publish(30)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 1) == 1
    finally:
        stopped = hq.stop()
        west.loop_stop()
    assert stopped == 0, hq.tail()
    with sqlite3.connect(db) as conn:
        letters = conn.execute("SELECT reason, payload FROM dead_letters").fetchall()
    assert letters == [("refused: a retained message; only a post's status may be retained",
                        b"junk kept by the broker")]  # fmt: skip


def status_of(node: str, when: float) -> bytes:
    return json.dumps({"kind": "node_status", "schema_version": "1.1", "site": "tummo",
                       "node": node, "state": "online", "time": when,
                       "software_version": "test"}).encode()  # fmt: skip


def test_a_flooding_post_is_limited_and_alerted_and_another_post_is_stored(
        deployment):  # noqa: F811  # fmt: skip
    tmp_path, port, passwords, config, _ = deployment
    db = tmp_path / "hq.db"
    config.write_text(config.read_text() + "[ingest]\nrate_per_s = 5.0\nrate_burst = 20\n")
    hq = start_hq(config, passwords)
    west, east = (publisher(node, port, passwords) for node in ("west-1", "east-1"))
    rng, start = np.random.default_rng(10), time.time()
    try:
        flood = [west.publish(topics.tracks("tummo", "west-1"), b"x" * 50_000, qos=1)
                 for _ in range(300)]  # fmt: skip
        for info in flood:
            info.wait_for_publish(60)
        for seq in range(10):
            message = encode(batch("east-1", seq, rng, start))
            east.publish(topics.tracks("tummo", "east-1"), message, qos=1).wait_for_publish(30)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 10) == 10
        assert wait_for_rows(db, "SELECT COUNT(*) FROM dead_letters", 300) == 300
    finally:
        stopped = hq.stop()
        west.loop_stop()
        east.loop_stop()
    assert stopped == 0, hq.tail()
    with sqlite3.connect(db) as conn:
        limited, kept = conn.execute(
            "SELECT COUNT(*), SUM(LENGTH(payload)) FROM dead_letters "
            "WHERE reason LIKE 'rate limit%' AND payload_size = 50000").fetchone()  # fmt: skip
        invalid = conn.execute("SELECT MAX(LENGTH(payload)) FROM dead_letters "
                               "WHERE reason LIKE 'invalid%'").fetchone()[0]  # fmt: skip
        [(alert,)] = conn.execute("SELECT alert FROM alerts "
                                  "WHERE alert_id = 'rate-limit-tummo~west-1'").fetchall()
    # Within its burst and rate, junk is read (and refused as invalid, its first 16 KiB kept);
    # the rest is refused unread, keeping no payload.
    assert 200 <= limited < 300 and kept == 0 and invalid == 16 * 1024
    assert json.loads(alert)["active"] is True
    [counters] = [line for line in hq.lines if "HQ stopped counters=" in line]
    assert f"rate_limited={limited}," in counters
