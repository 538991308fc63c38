"""A zone an admin draws through the API of a running HQ (`python -m hq run`, a real
mosquitto) alerts at once: the first batch after it whose track enters it raises the
zone entry, with no restart. Before the zone exists, the same track crossing the same
ground raises nothing."""

from __future__ import annotations

import re
import time

import httpx2 as httpx
import paho.mqtt.client as mqtt
import pytest

from hq.api.tokens import TokenStore
from hq.broker import free_tcp_port
from hq.store.sqlite import SqliteStore
from stack.process import wait_http_ready
from tests.integration.test_hq_ingest import (  # noqa: F401 (deployment is a fixture)
    POSTS,
    deployment,
    publisher,
    start_hq,
)
from wire import topics
from wire.messages import Track, TrackBatch, encode

pytestmark = pytest.mark.integration

FRAME = POSTS["west-1"]  # HQ's origin too
NORTH = 800.0
ZONE_ENU = [(5040.0, 750.0), (5095.0, 750.0), (5095.0, 850.0), (5040.0, 850.0)]
# A pickup drives east across the ground of the zone-to-be, then back west across it.
EAST = [5000.0 + 10.0 * k for k in range(13)] + [5110.0, 5100.0, 5090.0, 5080.0, 5070.0]
DRAWN_BEFORE = 13  # the zone is drawn once HQ has stored this many batches


def pickup_batch(seq: int, t: float) -> TrackBatch:
    east = EAST[seq]
    lat, lon, _ = FRAME.to_geodetic(east, NORTH, 0.0)
    velocity = (10.0 if seq < 13 else -10.0, 0.0)
    track = Track(track_id=1, time=t, lat=float(lat), lon=float(lon), alt=FRAME.alt,
                  position_enu=(east, NORTH), velocity_enu=velocity,
                  position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                  velocity_covariance=[[0.25, 0.0], [0.0, 0.25]], target_class="vehicle",
                  status="confirmed", quality=0.99, hits=10 + seq, last_measured=t)  # fmt: skip
    return TrackBatch(site="tummo", node="west-1", seq=seq, sent=t,
                      frame_origin=(FRAME.lat, FRAME.lon, FRAME.alt), tracks=[track])  # fmt: skip


@pytest.fixture
def hq_with_api(deployment):  # noqa: F811 (the fixture imported above)
    tmp_path, port, passwords, config, _ = deployment
    api_port = free_tcp_port()
    config.write_text(config.read_text() + f"\n[api]\nport = {api_port}\n")
    with SqliteStore(tmp_path / "hq.db") as store:  # HQ's store, before HQ starts
        token, _ = TokenStore(store).create("zone-admin", "admin")
    hq = start_hq(config, passwords)
    yield hq, f"http://127.0.0.1:{api_port}", token, port, passwords
    hq.kill()


def stored(client: httpx.Client) -> int:
    found = re.search(r"^dunewatch_hq_ingest_stored_total (\S+)$",
                      client.get("/metrics").text, re.M)  # fmt: skip
    return int(float(found.group(1))) if found else 0


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    return condition()


def publish(post: mqtt.Client, seq: int, t: float) -> None:
    message = encode(pickup_batch(seq, t))
    post.publish(topics.tracks("tummo", "west-1"), message, qos=1).wait_for_publish()


def test_a_zone_drawn_through_the_api_alerts_from_the_next_batch(hq_with_api):
    hq, url, token, port, passwords = hq_with_api
    wait_http_ready(f"{url}/readyz", hq)
    post = publisher("west-1", port, passwords)
    start = time.time()
    times = [start + seq for seq in range(len(EAST))]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as client:  # fmt: skip
        for seq in range(DRAWN_BEFORE):
            publish(post, seq, times[seq])
        assert wait_until(lambda: stored(client) >= DRAWN_BEFORE), stored(client)
        corners = [FRAME.to_geodetic(e, n, 0.0)[:2] for e, n in ZONE_ENU]
        drawn = client.post(
            "/api/v1/zones",
            json={
                "name": "wadi-gate",
                "points": [{"lat": lat, "lon": lon} for lat, lon in corners],
            },
        )
        assert drawn.status_code == 201, drawn.text
        for seq in range(DRAWN_BEFORE, len(EAST)):
            publish(post, seq, times[seq])

        def zone_alerts():
            listed = client.get("/api/v1/alerts", params={"limit": 1000}).json()["alerts"]
            return [a for a in listed if a["alert_type"] == "zone_entry"]

        assert wait_until(lambda: stored(client) >= len(EAST)), stored(client)
        entries = zone_alerts()
    post.loop_stop()
    # Once, on the way back, at the first batch inside: 5090 m east (seq 15). The way out,
    # before the zone was drawn, crossed the same ground and raised nothing.
    first_inside = DRAWN_BEFORE + EAST[DRAWN_BEFORE:].index(5090.0)
    assert len(entries) == 1, entries
    (entry,) = entries
    assert "wadi-gate" in entry["message"] and entry["severity"] == "warning"
    assert entry["time"] == pytest.approx(times[first_inside], abs=1e-3)
    assert hq.stop() == 0, hq.tail()
