"""MIL-STD-2525 / APP-6 symbols on the operator page, in headless chromium under HQ's
Content-Security-Policy: milsymbol (an npm package `make setup` installs) served by HQ draws
each track's affiliation frame and class, and nearby tracks' labels never overlap.

A post publishes a person, a vehicle and two people 2 m apart; an operator marks the person
hostile through the API. The page must draw the hostile person and the unknown vehicle with
the symbols of their SIDCs, in their frames' colours, and place the two close labels apart."""

from __future__ import annotations

import time
from itertools import combinations

import httpx2 as httpx
import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT
from tests.integration.test_hq_ingest import publisher
from tests.integration.test_hq_page import (
    CHROMIUM,
    NODE,
    POST,
    SITE,
    chromium_page,
    running_hq,
    sign_in,
)
from wire import topics
from wire.messages import Track, TrackBatch, encode

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
    pytest.mark.skipif(not (PROJECT_ROOT / "node_modules" / "milsymbol").is_dir(),
                       reason="the page's npm packages are not installed (make setup)"),
]  # fmt: skip

# (track id, class, metres east and north of the post, m/s east and north): standing still.
STILL = (0.0, 0.0)
OBJECTS = [(1, "person", (600.0, 900.0), STILL),
           (2, "vehicle", (1400.0, 900.0), STILL),
           (3, "person", (1000.0, 300.0), STILL),
           (4, "person", (1002.0, 300.0), STILL)]  # fmt: skip
# SIDCs: a dismounted individual in the hostile frame (2525E, number-based), a ground
# vehicle in the unknown frame (2525C, letter-based) as the CoT export types it.
HOSTILE_PERSON = "10062700000000000000"
UNKNOWN_VEHICLE = "SUGPEV---------"
# milsymbol's default ("Light") fill of each frame.
HOSTILE_FILL = (255, 128, 128)
UNKNOWN_FILL = (255, 255, 128)

PIXELS = """([x, y, half]) => {
    const canvas = document.getElementById("map");
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    const size = Math.round(2 * half * scale);
    const data = canvas.getContext("2d").getImageData(
        Math.round((x - half) * scale), Math.round((y - half) * scale), size, size).data;
    return [size, Array.from(data)];
}"""


def publish(client, seq: int, objects=OBJECTS, dt: float = 0.0) -> float:
    """One batch of the post's `objects`, each moved along its velocity for `dt` s."""
    t = time.time()
    tracks = []
    for track_id, cls, start, velocity in objects:
        east, north = (float(p + v * dt) for p, v in zip(start, velocity, strict=True))
        lat, lon, _ = POST.to_geodetic(east, north, 0.0)
        tracks.append(Track(
            track_id=track_id, time=t, lat=float(lat), lon=float(lon), alt=POST.alt,
            position_enu=(east, north), velocity_enu=velocity,
            position_covariance=[[4.0, 0.0], [0.0, 4.0]],
            velocity_covariance=[[0.04, 0.0], [0.0, 0.04]],
            target_class=cls, status="confirmed", quality=0.95, hits=10 + seq,
        ))  # fmt: skip
    batch = TrackBatch(site=SITE, node=NODE, seq=seq, sent=t,
                       frame_origin=(POST.lat, POST.lon, POST.alt), tracks=tracks)  # fmt: skip
    client.publish(topics.tracks(SITE, NODE), encode(batch), qos=1).wait_for_publish()
    return t


def test_tracks_are_drawn_with_2525_symbols_and_close_labels_do_not_overlap(tmp_path):
    with running_hq(tmp_path) as stack:
        script = httpx.get(f"{stack.url}/vendor/milsymbol/dist/milsymbol.js")
        assert script.status_code == 200 and "milsymbol" in script.text[:2000]
        client = publisher(NODE, stack.broker_port, stack.passwords)
        api = stack.api()
        try:
            for seq in range(2):
                publish(client, seq)
            by_node_id = fused_ids(api)
            person, vehicle = by_node_id[1], by_node_id[2]
            marked = api.patch(f"/api/v1/tracks/{person}", json={"affiliation": "hostile"})
            assert marked.status_code == 200, marked.text
            with chromium_page() as page:
                sign_in(page, stack.url, stack.token)
                page.wait_for_function(
                    """([person, n]) => {
                        if (!window.dunewatch) return false;
                        const s = window.dunewatch.state();
                        const p = s.tracks.find((t) => t.id === person);
                        return s.tracks.length === n && p && p.affiliation === "hostile"
                               && p.symbol !== null && s.labels.length === n;
                    }""", arg=[person, len(OBJECTS)], timeout=20_000)  # fmt: skip
                page.wait_for_timeout(300)  # the frame after the state: painted
                state = page.evaluate("window.dunewatch.state()")
                tracks = {t["id"]: t for t in state["tracks"]}
                assert tracks[person]["symbol"] == HOSTILE_PERSON
                assert tracks[vehicle]["symbol"] == UNKNOWN_VEHICLE
                hostile = _pixels_around(page, tracks[person])
                unknown = _pixels_around(page, tracks[vehicle])
                # Each frame is filled in its affiliation's colour, and not in the other's.
                assert _share(hostile, HOSTILE_FILL) > 0.15 and _share(hostile, UNKNOWN_FILL) == 0
                assert _share(unknown, UNKNOWN_FILL) > 0.15 and _share(unknown, HOSTILE_FILL) == 0
                _close_labels_do_not_overlap(state, by_node_id[3], by_node_id[4])
                page.screenshot(path=str(tmp_path / "hq_page_symbols.png"))
                assert page.problems == []  # a script blocked by the CSP would be one
        finally:
            client.loop_stop()
            client.disconnect()
            api.close()


def fused_ids(api, count: int = len(OBJECTS), timeout_s: float = 20.0) -> dict[int, int]:
    """HQ's global id of each of the post's `count` tracks, once all are fused."""
    deadline = time.monotonic() + timeout_s
    while True:
        tracks = api.get("/api/v1/tracks").json()["tracks"]
        ids = {int(s.rsplit(":", 1)[1]): t["global_id"] for t in tracks for s in t["sources"]}
        if len(ids) == count:
            return ids
        assert time.monotonic() < deadline, f"HQ fused {ids} of {count} tracks"
        time.sleep(0.1)


def _pixels_around(page, track: dict, half: int = 8) -> np.ndarray:
    size, data = page.evaluate(PIXELS, [track["x"], track["y"], half])
    return np.array(data, dtype=float).reshape(size * size, 4)


def _share(pixels: np.ndarray, colour: tuple[int, int, int]) -> float:
    """The share of opaque pixels within a few levels of `colour`."""
    opaque = pixels[pixels[:, 3] > 250]
    near = np.all(np.abs(opaque[:, :3] - colour) <= 6, axis=1)
    return float(np.mean(near)) if len(opaque) else 0.0


def _close_labels_do_not_overlap(state: dict, first: int, second: int) -> None:
    tracks = {t["id"]: t for t in state["tracks"]}
    a, b = tracks[first], tracks[second]
    assert np.hypot(a["x"] - b["x"], a["y"] - b["y"]) < 3  # 2 m: drawn almost on each other
    labels = {label["id"]: label["box"] for label in state["labels"]}
    assert first in labels and second in labels
    (ax, ay, aw, ah), (bx, by, bw, bh) = labels[first], labels[second]
    assert aw > 0 and ah > 0 and bw > 0 and bh > 0
    assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (labels, a, b)
    # And no two labels anywhere overlap.
    for (x0, y0, w0, h0), (x1, y1, w1, h1) in combinations(labels.values(), 2):
        assert x0 + w0 <= x1 or x1 + w1 <= x0 or y0 + h0 <= y1 or y1 + h1 <= y0
