"""The live stream over a real uvicorn on loopback: a snapshot, then the deltas of batches
committed to the store and handed to the feed as ingest's on_commit does, operators' actions,
and a resume with Last-Event-ID after the connection dropped."""

from __future__ import annotations

import json
import threading
import time

import httpx2 as httpx
import pytest
import uvicorn

from hq.api.app import create_app
from hq.api.live import LiveFeed
from hq.store.records import HistoryPoint, IngestBatch
from hq.store.sqlite import SqliteStore
from tests.unit.test_hq_api_support import NODE, fill, fused, make_tokens, settings

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path):
    config = settings(tmp_path, cors_origins=["http://ops.example"])
    store = SqliteStore(config.store)
    now = time.time()
    fill(store, now)
    tokens = make_tokens(store)
    feed = LiveFeed(tick_s=0.05, heartbeat_s=0.5)
    app = create_app(store, config, feed)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                       timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", tokens, (store, feed), now
    uv.should_exit = True
    thread.join(10)
    store.close()


def events(response):
    """(id, event, data) of each SSE event as it arrives."""
    fields = {}
    for line in response.iter_lines():
        if not line:
            if "event" in fields:
                yield fields["id"], fields["event"], json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def commit(writer, now, seq, *tracks):
    """As ingest does it: commit the batch, then hand it to `on_commit` (the feed)."""
    store, feed = writer
    batch = IngestBatch(now, node_key=NODE, seq=seq, fused_tracks=tracks,
                        history=[HistoryPoint.of(t) for t in tracks])
    assert store.commit_ingest(batch)
    feed.publish(batch)


def test_snapshot_then_deltas_then_a_resume_from_last_event_id(server):
    url, tokens, writer, now = server
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        with client.stream("GET", "/api/v1/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            _, event, snapshot = next(stream)
            assert event == "snapshot" and len(snapshot["tracks"]) == 3
            assert {a["alert_id"] for a in snapshot["alerts"]} == {"distress-1", "node-x"}
            commit(writer, now + 1, 2, fused(1, now + 1, lat=22.85), fused(4, now + 1))
            last_id, event, data = next(e for e in stream if e[1] == "delta")
            assert ([t["global_id"] for t in data["created"]],
                    [t["global_id"] for t in data["updated"]]) == ([4], [1])  # fmt: skip
        # Disconnected; meanwhile track 2 ends and an operator acknowledges an alert.
        commit(writer, now + 2, 3, fused(2, now + 2, status="ended"))
        operator = {"Authorization": f"Bearer {tokens['operator']}"}
        assert client.post("/api/v1/alerts/distress-1/acknowledge",
                           headers=operator).status_code == 200  # fmt: skip
        time.sleep(0.3)  # a few ticks: both are in the ring by now
        with client.stream("GET", "/api/v1/stream",
                           headers={"Last-Event-ID": last_id}) as response:  # fmt: skip
            resumed = []
            for _, event, data in events(response):
                if event == "heartbeat":
                    break
                resumed.append((event, data))
    assert [event for event, _ in resumed] == ["delta"] * len(resumed)  # no snapshot
    assert [e for _, d in resumed for e in d["ended"]] == [2]
    [alert] = [a for _, d in resumed for a in d["alerts"]]
    assert (alert["alert_id"], alert["state"], alert["acknowledged_by"]) == (
        "distress-1", "acknowledged", "operator-user")


def test_a_filtered_stream_gets_only_its_box_and_an_anonymous_one_is_refused(server):
    url, tokens, writer, now = server
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/api/v1/stream").status_code == 401
        headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        with client.stream("GET", "/api/v1/stream", params={"bbox": "22.8,14.0,22.95,14.5"},
                           headers=headers) as response:  # fmt: skip
            stream = events(response)
            _, _, snapshot = next(stream)
            assert sorted(t["global_id"] for t in snapshot["tracks"]) == [1, 2]
            commit(writer, now + 1, 2, fused(3, now + 1, lat=23.5, lon=14.6),
                   fused(1, now + 1, lat=23.5, lon=14.6))  # fmt: skip
            _, _, data = next(e for e in stream if e[1] == "delta")
            assert (data["created"], data["updated"], data["ended"]) == ([], [], [1])


def test_cors_answers_only_the_configured_origin(server):
    url, *_ = server
    with httpx.Client(base_url=url, timeout=10) as client:
        preflight = {"Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}  # fmt: skip
        good = client.options("/api/v1/tracks", headers={"Origin": "http://ops.example",
                                                         **preflight})  # fmt: skip
        bad = client.options("/api/v1/tracks", headers={"Origin": "http://evil.example",
                                                        **preflight})  # fmt: skip
    assert good.headers["access-control-allow-origin"] == "http://ops.example"
    assert "access-control-allow-origin" not in bad.headers
