"""Our own drones on the operator's page, from real node processes: the whole stack on the
Tummo scenario (mosquitto, HQ with its API, one `python -m edge run` per post, the
simulator flying three drones with gimbal cameras), and the page in Debian's headless
chromium. Nothing here writes a drone's position: each comes from the drone's MAVLink
through its post's node and HQ's store and live stream.

The page must draw every drone where its post's telemetry puts it, labelled by post and
system id (two posts' drones never share a name), with its altitude, battery and link,
and each camera's footprint on the ground where the telemetry's corners are.
"""

from __future__ import annotations

import time

import httpx2 as httpx
import numpy as np
import pytest

from hq.broker import free_tcp_port
from stack.__main__ import create_token
from stack.deployment import Deployment, StackOptions
from stack.process import wait_http_ready
from tests.conftest import PROJECT_ROOT
from tests.integration.test_hq_page import CHROMIUM, chromium_page, running_hq, sign_in
from wire.geo import EnuFrame

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]  # fmt: skip

SCENARIO = PROJECT_ROOT / "configs" / "scenarios" / "tummo.toml"
LABELS = {"tummo/tummo-west drone 1", "tummo/tummo-west drone 2", "tummo/tummo-east drone 3"}
FRIEND = (79, 195, 247)  # the page's friendly colour, #4fc3f7

DRAWN = """(n) => {
    if (!window.dunewatch) return false;  // the page's modules are still loading
    const drones = window.dunewatch.state().drones;
    return drones.length === n && drones.every((d) => d.footprints.length && d.symbol !== null);
}"""
PIXEL = """([x, y]) => {
    const canvas = document.getElementById("map");
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    return Array.from(canvas.getContext("2d")
        .getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data);
}"""


def test_the_page_draws_each_drone_of_the_real_nodes_with_its_camera_footprint(tmp_path):
    api_port = free_tcp_port()
    options = StackOptions(skip_s=60.0, camera_size=(320, 180), camera_fps=2.0,
                           api_port=api_port)  # fmt: skip
    with Deployment(SCENARIO, tmp_path / "stack", options) as deployment:
        url = f"http://127.0.0.1:{api_port}"
        wait_http_ready(f"{url}/readyz", deployment.services["hq"])
        token = create_token(deployment.database)
        api = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        try:
            drones = _wait_for_drones_with_footprints(api, deployment)
            assert {d["label"] for d in drones} == LABELS
            with chromium_page() as page:
                sign_in(page, url, token)
                page.wait_for_function(DRAWN, arg=len(LABELS), timeout=60_000, polling=100)
                _drawn_as_the_telemetry_says(page, api)
                screenshot = tmp_path / "hq_page_drones.png"
                page.screenshot(path=str(screenshot))
                print(f"screenshot of our drones on the operator's page: {screenshot}")
                assert page.problems == []
        finally:
            api.close()
        assert deployment.failed() == [], deployment.failed()


STATUS_TEXT = """async ([drones, now]) => {
    const { droneStatusText } = await import("/draw.js");
    return drones.map((drone) => droneStatusText(drone, now));
}"""


def test_a_drones_status_line_says_altitude_battery_link_and_how_long_it_has_been_silent(
    tmp_path,
):
    """The page's own text for a drone's label, run in the browser."""
    now = 1_800_000_000.0
    drones = [
        {"alt": 949.6, "battery_remaining": 0.644, "link": "ok", "time": now - 0.4},
        {"alt": 700.0, "battery_remaining": None, "link": "unknown", "time": now - 14.0},
        {"alt": 700.0, "battery_remaining": 0.1, "link": "lost", "time": now - 42.0},
        {"alt": 700.0, "battery_remaining": 0.1, "link": "lost", "time": now - 600.0},
    ]
    with running_hq(tmp_path) as stack, chromium_page() as page:
        page.goto(stack.url)
        texts = page.evaluate(STATUS_TEXT, [drones, now])
    assert texts == [
        "950 m · 64% · link ok",
        "700 m · battery ? · link unknown",
        "700 m · 10% · link lost · heard 42 s ago",
        "700 m · 10% · link lost · heard 10 min ago",
    ]


def _wait_for_drones_with_footprints(api, deployment, timeout_s=240.0) -> list[dict]:
    """HQ's drones once every drone of the scenario reported its camera's footprint, two of
    its corners on the ground at least (a camera looking ahead sees the horizon: its top
    corners meet no ground). The nodes warm their kernels first, then the drones take off."""
    deadline = time.monotonic() + timeout_s
    while True:
        drones = api.get("/api/v1/drones").json()["drones"]
        seen = [d for d in drones if d["footprints"] and all(
            sum(c is not None for c in f["corners"]) >= 2 for f in d["footprints"])]  # fmt: skip
        if len(seen) == len(LABELS):
            return drones
        assert time.monotonic() < deadline, (f"drones with footprints: {seen!r:.1000}; "
                                             f"failed parts: {deployment.failed()}")  # fmt: skip
        time.sleep(1.0)


def _drawn_as_the_telemetry_says(page, api) -> None:
    state = page.evaluate("window.dunewatch.state()")
    drawn = {d["id"]: d for d in state["drones"]}
    assert {d["label"] for d in drawn.values()} == LABELS  # never two "drone 1"
    box = page.locator("#map").bounding_box()
    for drone_id, shown in drawn.items():
        site, node, sysid = drone_id.split("/")
        # The telemetry the page drew is one HQ stored: the drone's history has it exactly.
        history = api.get(
            f"/api/v1/drones/{site}/{node}/{sysid}/history",
            params={"t0": shown["time"] - 1, "t1": shown["time"] + 1},
        ).json()
        [stored] = [p for p in history["points"] if p["time"] == shown["time"]]
        assert (shown["lat"], shown["lon"], shown["alt"]) == (stored["lat"], stored["lon"],
                                                              stored["alt"])  # fmt: skip
        assert (shown["heading"], shown["battery"], shown["link"]) == (
            stored["heading"], stored["battery_remaining"], stored["link"])  # fmt: skip
        assert shown["link"] == "ok"
        assert 0 <= shown["x"] <= box["width"] and 0 <= shown["y"] <= box["height"]
        # Each footprint drawn where its corners are: on screen, the corners' offsets from
        # the drone are their offsets on the ground at one scale, east right and north up.
        frame = EnuFrame(stored["lat"], stored["lon"], 0.0)
        for footprint, on_screen in zip(stored["footprints"], shown["footprints"], strict=True):
            assert on_screen["camera"] == footprint["camera"]
            on_ground = [k for k, c in enumerate(footprint["corners"]) if c is not None]
            assert [c is not None for c in on_screen["corners"]] == [
                c is not None for c in footprint["corners"]]  # fmt: skip
            lat = np.array([footprint["corners"][k]["lat"] for k in on_ground])
            lon = np.array([footprint["corners"][k]["lon"] for k in on_ground])
            east, north, _ = frame.from_geodetic(lat, lon, np.zeros(len(on_ground)))
            screen = np.array([on_screen["corners"][k] for k in on_ground], dtype=float)
            screen -= [shown["x"], shown["y"]]
            ground = np.column_stack([east, -north])  # screen y grows downwards
            scale = np.sum(screen * ground) / np.sum(ground * ground)  # pixels per metre
            misfit = np.linalg.norm(screen - scale * ground, axis=1)
            extent = np.max(np.linalg.norm(screen, axis=1))
            assert scale > 0 and np.max(misfit) < max(1.5, 0.02 * extent), (screen, ground)
        # And it is drawn as MIL-STD-2525's friendly UAV, its heading line painted in the
        # friendly colour beyond the symbol's frame, along the drone's heading.
        assert shown["symbol"] == "SFAPMFQ--------"
        heading = np.radians(shown["heading"])
        ahead = [shown["x"] + 19 * np.sin(heading), shown["y"] - 19 * np.cos(heading)]
        red, green, blue, _ = page.evaluate(PIXEL, ahead)
        assert np.allclose((red, green, blue), FRIEND, atol=40), (red, green, blue)
