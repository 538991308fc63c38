"""`python -m hq run` with an [api] section: one process ingests from a real mosquitto and
serves the API; a post's batches appear on the live stream, and SIGTERM stops it all."""

from __future__ import annotations

import json
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
)
from wire import topics
from wire.messages import encode

pytestmark = pytest.mark.integration


@pytest.fixture
def hq_with_api(deployment):  # noqa: F811 (the fixture imported above)
    """test_hq_ingest's broker and HQ config, with the API on a free port."""
    tmp_path, port, passwords, config, _ = deployment
    api_port = free_tcp_port()
    config.write_text(config.read_text() + f"""
[api]
port = {api_port}
[api.stream]
tick_s = 0.1
heartbeat_s = 0.5
""")
    with SqliteStore(tmp_path / "hq.db") as store:  # HQ's store, before HQ starts
        token, _ = TokenStore(store).create("watch", "viewer")
    hq = start_hq(config, passwords)
    yield hq, f"http://127.0.0.1:{api_port}", token, port, passwords
    hq.kill()


def test_batches_from_a_post_reach_the_live_stream_of_the_same_process(hq_with_api):
    hq, url, token, port, passwords = hq_with_api
    wait_http_ready(f"{url}/readyz", hq)
    post = publisher("west-1", port, passwords)
    rng, start = np.random.default_rng(5), time.time()
    headers = {"Authorization": f"Bearer {token}"}
    created = set()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        with client.stream("GET", "/api/v1/stream") as response:
            lines = response.iter_lines()
            for seq in range(3):
                message = encode(batch("west-1", seq, rng, start))
                post.publish(topics.tracks("tummo", "west-1"), message, qos=1).wait_for_publish()
            deadline = time.monotonic() + 60  # heartbeats keep the loop turning
            for line in lines:
                if line.startswith("data: ") and '"created"' in line:
                    created |= {t["global_id"] for t in json.loads(line[6:])["created"]}
                if len(created) >= 5 or time.monotonic() > deadline:
                    break
        tracks = client.get("/api/v1/tracks").json()
        metrics = client.get("/metrics").text
    post.loop_stop()
    assert len(created) == 5 and {t["global_id"] for t in tracks["tracks"]} == created
    assert "dunewatch_hq_ingest_stored_total 3.0" in metrics
    assert hq.stop() == 0, hq.tail()
