"""A hostile post against a real mosquitto and `python -m hq run` with its API: it cannot
empty the operators' live picture with a time from the future, cannot replace HQ's
alerts or another post's, and HQ's own post-health alerts reach live clients and can be
acknowledged and resolved through the API."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx2 as httpx
import numpy as np
import pytest

from hq.api.tokens import TokenStore
from hq.broker import free_tcp_port
from hq.store.sqlite import SqliteStore
from stack.process import wait_http_ready
from tests.integration.test_hq_ingest import (  # noqa: F401 (deployment is a fixture)
    batch,
    deployment,
    publisher,
    start_hq,
    wait_for_rows,
)
from wire import topics
from wire.messages import Alert, NodeStatus, encode

pytestmark = pytest.mark.integration


@pytest.fixture
def hq_api(deployment):  # noqa: F811 (the fixture imported above)
    """Start HQ with its API (and `extra` TOML) on the deployment; tokens of each role."""
    tmp_path, port, passwords, config, _ = deployment
    started = []

    def start(extra: str = ""):
        api_port = free_tcp_port()
        config.write_text(config.read_text() + f"""
{extra}
[api]
port = {api_port}
[api.stream]
tick_s = 0.1
heartbeat_s = 0.5
""")
        with SqliteStore(tmp_path / "hq.db") as store:
            tokens = {role: TokenStore(store).create(f"{role}-1", role)[0]
                      for role in ("viewer", "operator")}  # fmt: skip
        hq = start_hq(config, passwords)
        started.append(hq)
        url = f"http://127.0.0.1:{api_port}"
        wait_http_ready(f"{url}/readyz", hq)
        return hq, url, tokens

    yield start, tmp_path / "hq.db", port, passwords
    for hq in started:
        hq.kill()


def first_event(url: str, token: str, kinds: tuple[str, ...], timeout: float = 60.0,
                accept=lambda data: True) -> dict:  # fmt: skip
    """The data of the first event of one of `kinds` that `accept` takes, on a new live-stream
    client."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{url}/api/v1/stream", headers=headers, timeout=30) as response:
        event = None
        for line in response.iter_lines():  # heartbeats keep the loop turning
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in kinds and accept(json.loads(line[6:])):
                return json.loads(line[6:])
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"no {kinds} event within {timeout} s")


def test_a_track_from_the_far_future_does_not_empty_a_new_clients_picture(hq_api):
    start, db, port, passwords = hq_api
    hq, url, tokens = start()
    west, east = (publisher(node, port, passwords) for node in ("west-1", "east-1"))
    rng, t0 = np.random.default_rng(11), time.time()
    try:
        for seq in range(10):
            for node, client in (("west-1", west), ("east-1", east)):
                message = encode(batch(node, seq, rng, t0))
                client.publish(topics.tracks("tummo", node), message, qos=1).wait_for_publish(30)
        assert wait_for_rows(db, "SELECT COUNT(*) FROM seen_batches", 20) == 20
        future = json.loads(encode(batch("west-1", 10, rng, t0)))
        stray = dict(future["tracks"][0], track_id=99, time=1e308)
        stray["position_enu"] = [stray["position_enu"][0] + 3000.0, stray["position_enu"][1]]
        future["tracks"].append(stray)
        west.publish(topics.tracks("tummo", "west-1"), json.dumps(future).encode(),
                     qos=1).wait_for_publish(30)  # fmt: skip
        # Taken in one way or the other: stored, or (as it must be) dead-lettered.
        assert wait_for_rows(db, "SELECT (SELECT COUNT(*) FROM seen_batches) + "
                                 "(SELECT COUNT(*) FROM dead_letters)", 21) == 21  # fmt: skip
        time.sleep(1.0)  # a few of the live feed's ticks
        snapshot = first_event(url, tokens["viewer"], ("snapshot",))
        headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
    finally:
        west.loop_stop()
        east.loop_stop()
    assert len(snapshot["tracks"]) == 5  # the five walkers both posts see
    assert all(t["time"] < t0 + 3600 for t in snapshot["tracks"])
    assert "dunewatch_hq_ingest_future_total 1.0" in metrics
    with sqlite3.connect(db) as conn:
        [(reason,)] = conn.execute("SELECT reason FROM dead_letters").fetchall()
        times = [t for (t,) in conn.execute("SELECT time FROM fused_tracks")]
    assert reason.startswith("out of bounds") and "ahead of HQ's clock" in reason
    assert max(times) < t0 + 3600
    assert hq.stop() == 0, hq.tail()


def status(node: str, state: str, when: float) -> bytes:
    return encode(NodeStatus(site="tummo", node=node, state=state, time=when,
                             software_version="test"))  # fmt: skip


def test_a_post_cannot_replace_hqs_alerts_and_hqs_alerts_can_be_worked(hq_api):
    start, db, port, passwords = hq_api
    hq, url, tokens = start()
    west, east = (publisher(node, port, passwords) for node in ("west-1", "east-1"))
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    try:
        now = time.time()
        east.publish(topics.status("tummo", "east-1"), status("east-1", "offline", now),
                     qos=1).wait_for_publish(30)  # fmt: skip
        offline = "node-offline-tummo~east-1"
        assert wait_for_rows(db, f"SELECT COUNT(*) FROM alerts WHERE alert_id = '{offline}'", 1)
        # West-1 forges HQ's alert about east-1: cleared, and as late as HQ accepts.
        for forged_id in (offline, "node-offline-tummo/east-1"):
            forged = Alert(site="tummo", node="west-1", alert_id=forged_id,
                           alert_type="node_offline", severity="info", time=now + 250,
                           message="all fine", active=False)  # fmt: skip
            west.publish(topics.alerts("tummo", "west-1"), encode(forged),
                         qos=1).wait_for_publish(30)  # fmt: skip
        assert wait_for_rows(db, "SELECT COUNT(*) FROM alerts WHERE site = 'tummo'", 1) == 1
        assert wait_for_rows(db, "SELECT COUNT(*) FROM dead_letters", 1) == 1
        with httpx.Client(base_url=f"{url}/api/v1", headers=operator, timeout=30) as api:
            ours = api.get(f"/alerts/{offline}").json()
            theirs = sorted(a["alert_id"] for a in api.get("/alerts").json()["alerts"]
                            if a["node"] == "west-1")  # fmt: skip
            acknowledged = api.post(f"/alerts/{offline}/acknowledge")
            resolved = api.post(f"/alerts/{offline}/resolve", json={"note": "post checked"})
    finally:
        west.loop_stop()
        east.loop_stop()
    assert ours["active"] is True and ours["severity"] == "critical" and ours["node"] == "fusion"
    assert theirs == ["post~tummo~west-1~node-offline-tummo~east-1"]  # the "/" one: refused
    assert acknowledged.status_code == 200 and acknowledged.json()["state"] == "acknowledged"
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    with sqlite3.connect(db) as conn:
        [(reason,)] = conn.execute("SELECT reason FROM dead_letters").fetchall()
    assert "alert id" in reason and "node-offline-tummo/east-1" in reason
    assert hq.stop() == 0, hq.tail()


def test_a_post_silence_alert_reaches_a_live_client_without_a_restart(hq_api):
    start, db, port, passwords = hq_api
    hq, url, tokens = start("[alerts]\nnode_silence_s = 2.0")
    west = publisher("west-1", port, passwords)
    try:
        west.publish(topics.status("tummo", "west-1"), status("west-1", "online", time.time()),
                     qos=1).wait_for_publish(30)  # fmt: skip
        # In a delta (or the snapshot, if the client came after): both are what the live feed
        # was given, not what the store holds.
        event = first_event(url, tokens["viewer"], ("delta", "snapshot"),
                            accept=lambda data: any(silence(a) for a in data["alerts"]))
    finally:
        west.loop_stop()
    [alert] = [a for a in event["alerts"] if silence(a)]
    assert alert["active"] is True and alert["severity"] == "critical"
    assert alert["alert_id"] == "node-silent-tummo~west-1"
    assert hq.stop() == 0, hq.tail()


def silence(alert: dict) -> bool:
    return alert["alert_type"] == "node_offline" and "west-1 silent" in alert["message"]
