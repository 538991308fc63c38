"""The operator's page in real headless Chromium against a running HQ.

mosquitto and `python -m hq run` (with its API) run as processes; a paho client publishes
what a post would (its status, then track batches); Playwright drives Debian's chromium.
The page must sign in with a token made by the CLI, draw the tracks HQ fused and move them
as batches arrive, show the border-crossing and distress alerts that HQ raises, let an
operator acknowledge one, and show a track's details and history on a click.

The helpers here are shared with bench/hq_page.py, which times batch-to-page latency.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from stack.process import Service, wait_http_ready
from tests.integration.test_hq_ingest import publisher, start_hq
from wire import topics
from wire.geo import EnuFrame
from wire.messages import DroneLink, NodeStatus, Track, TrackBatch, encode

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]  # fmt: skip

SITE, NODE = "tummo", "west-1"
POST = EnuFrame(22.84, 14.13, 620.0)  # the post, and HQ's origin
BORDER = [[23.52, 11.99], [22.79, 14.22], [23.00, 15.00]]
OPERATOR = "duty-officer"


# -- what the post sees ------------------------------------------------------------------------


@dataclass
class Scene:
    """Ground truth at wall-clock time t: walkers heading north, a vehicle driving north across
    the border, and one person who does not move (stranded, for a distress alert). The scene
    starts with its first batch, so the vehicle is seen south of the border first."""

    start: float | None = None
    walkers: int = 3
    crowd: int = 0  # extra walkers spread over the area, for a busy picture
    vehicle_speed: float = 25.0  # m/s
    walker_velocity: tuple[float, float] = (0.3, 1.3)
    stranded_at: tuple[float, float] = (1500.0, -1500.0)  # m east, north of the post
    crowd_at: np.ndarray = field(init=False)

    def __post_init__(self):
        # Where the vehicle's meridian (3 km east of the post) meets the border.
        east, north = _border_enu()
        self.vehicle_east = 3000.0
        s = (self.vehicle_east - east[0]) / (east[1] - east[0])
        self.border_north = north[0] + s * (north[1] - north[0])
        rng = np.random.default_rng(7)
        self.crowd_at = rng.uniform([-8000, -2000], [8000, 8000], (self.crowd, 2))

    def positions(self, t: float) -> list[tuple[int, str, np.ndarray, np.ndarray]]:
        """(track id, class, position, velocity) of every object at t, in the post's ENU."""
        if self.start is None:
            self.start = t
        dt = t - self.start
        v = np.array(self.walker_velocity)
        objects = [(k + 1, "person", np.array([4000.0 + 400 * k, 800.0]) + v * dt, v)
                   for k in range(self.walkers)]  # fmt: skip
        # The vehicle starts 60 m south of the border, drives north for 8 s, then waits.
        driven = min(dt, 8.0)
        moving = dt < 8.0
        objects.append((100, "vehicle",
                        np.array([self.vehicle_east,
                                  self.border_north - 60.0 + self.vehicle_speed * driven]),
                        np.array([0.0, self.vehicle_speed if moving else 0.0])))  # fmt: skip
        objects.append((200, "person", np.array(self.stranded_at), np.zeros(2)))
        for k, at in enumerate(self.crowd_at):
            objects.append((1000 + k, "unknown", at + v * dt, v))
        return objects

    def batch(self, seq: int, t: float) -> TrackBatch:
        tracks = []
        for track_id, cls, (east, north), velocity in self.positions(t):
            lat, lon, _ = POST.to_geodetic(east, north, 0.0)
            tracks.append(Track(
                track_id=track_id, time=t, lat=float(lat), lon=float(lon), alt=POST.alt,
                position_enu=(float(east), float(north)), velocity_enu=tuple(map(float, velocity)),
                position_covariance=[[16.0, 3.0], [3.0, 9.0]],
                velocity_covariance=[[0.25, 0.0], [0.0, 0.25]],
                target_class=cls, status="confirmed", quality=0.95, hits=10 + seq,
            ))  # fmt: skip
        return TrackBatch(site=SITE, node=NODE, seq=seq, sent=t,
                          frame_origin=(POST.lat, POST.lon, POST.alt), tracks=tracks)  # fmt: skip


def _border_enu() -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.array(BORDER[:2]).T
    east, north, _ = POST.from_geodetic(lat, lon, np.full(2, POST.alt))
    return east, north


class Post:
    """Publishes as an edge node does: its status (with a drone), then track batches."""

    def __init__(self, port: int, passwords: dict[str, str], scene: Scene):
        self.client = publisher(NODE, port, passwords)
        self.scene = scene
        self.seq = 0

    def status(self) -> None:
        # Link health only: where a drone is comes from its own telemetry (the page test with
        # a real node, test_hq_page_drones.py).
        drone = DroneLink(sysid=1, connected=True, packet_loss=0.02, battery_remaining=0.8)
        status = NodeStatus(site=SITE, node=NODE, state="online", time=time.time(),
                            software_version="test", drones=[drone], outbox_depth=0,
                            lat=POST.lat, lon=POST.lon)  # fmt: skip
        self.client.publish(topics.status(SITE, NODE), encode(status), qos=1,
                            retain=True).wait_for_publish()  # fmt: skip

    def send(self) -> float:
        """Publish the batch of now; returns its time, which is also its publish time."""
        t = time.time()
        message = encode(self.scene.batch(self.seq, t))
        self.seq += 1
        self.client.publish(topics.tracks(SITE, NODE), message, qos=1).wait_for_publish()
        return t

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# -- HQ and the browser ---------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    token: str
    broker_port: int
    passwords: dict[str, str]
    hq: Service

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip


@contextmanager
def running_hq(workdir: Path, tick_s: float = 0.1, dwell_s: float = 2.0) -> Iterator[Stack]:
    """mosquitto and `python -m hq run` serving the API (and the page) on a free port, with
    an operator's token made by the CLI. A short distress dwell makes alerts quick; the small
    radius keeps walkers (who cover 1.3 m a second) from counting as stationary in it."""
    port, api_port = free_tcp_port(), free_tcp_port()
    passwords = write_broker_config(workdir / "broker", [(SITE, NODE)], port=port,
                                    bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(workdir / "broker" / "mosquitto.conf", port).start()
    config = workdir / "hq.toml"
    config.write_text(f"""
origin = [{POST.lat}, {POST.lon}, {POST.alt}]
border = {BORDER}
home = [22.84, 14.13]
database = "{workdir / 'hq.db'}"
[[zones]]
name = "wadi"
polygon = [[22.846, 14.145], [22.846, 14.16], [22.853, 14.152]]
[broker]
port = {port}
password = {{ env = "HQ_MQTT_PASSWORD" }}
[alerts]
distress_dwell_s = {dwell_s}
distress_radius_m = 1.0
distress_stop_radius_m = 0.5
[api]
port = {api_port}
[api.stream]
tick_s = {tick_s}
heartbeat_s = 2.0
""")
    created = subprocess.run(
        [sys.executable, "-m", "hq", "token", "create", "--name", OPERATOR, "--role", "operator",
         "--store", str(workdir / "hq.db")],
        capture_output=True, text=True, check=True, env=os.environ)  # fmt: skip
    token = created.stdout.split()[0]
    try:
        hq = start_hq(config, passwords)
    except BaseException:
        broker.kill()  # HQ refused its config or did not start: no broker left behind
        raise
    try:
        url = f"http://127.0.0.1:{api_port}"
        wait_http_ready(f"{url}/readyz", hq)
        yield Stack(url, token, port, passwords, hq)
    finally:
        hq.stop()
        broker.kill()


@contextmanager
def chromium_page(width: int = 1280, height: int = 800):
    """A page in Debian's headless chromium (Playwright downloads no browser of its own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.problems = []  # script errors and failed requests, for the assertions
            page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            yield page
        finally:
            browser.close()


def sign_in(page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#app").wait_for(state="visible", timeout=10_000)


def drawn(page) -> dict[int, dict]:
    """The page's drawn tracks by id (its read-only test hook)."""
    return {t["id"]: t for t in page.evaluate("window.dunewatch.state().tracks")}


def wait_drawn(page, ids, t: float, timeout_s: float = 15.0) -> dict[int, dict]:
    """Wait until every track of `ids` is drawn with its state of time t (or later)."""
    page.wait_for_function(
        """([ids, t]) => {
            const tracks = new Map(window.dunewatch.state().tracks.map((x) => [x.id, x]));
            return ids.every((id) => tracks.has(id) && tracks.get(id).time >= t - 1e-6
                                     && tracks.get(id).shownAt !== null);
        }""", arg=[list(ids), t], timeout=timeout_s * 1000, polling=20)  # fmt: skip
    return drawn(page)


def page_latency(page, track_id: int, t: float) -> float:
    """Seconds from publishing the batch of time t to the frame that drew it (the page
    stamps each track with the wall-clock time of the frame that first showed its update)."""
    track = wait_drawn(page, [track_id], t)[track_id]
    assert abs(track["time"] - t) < 1e-3, "a later batch was drawn first: send more slowly"
    return track["shownAt"] / 1000 - t


# -- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_hq(tmp_path_factory.mktemp("hq")) as running:
        yield running


def test_the_page_shows_the_live_picture_and_an_operator_acknowledges_an_alert(stack, tmp_path):
    scene = Scene()
    post = Post(stack.broker_port, stack.passwords, scene)
    api = stack.api()
    try:
        post.status()
        with chromium_page() as page:
            _refuses_a_wrong_token(page, stack.url)
            sign_in(page, stack.url, stack.token)
            _shows_the_post_and_its_drone(page)
            _shows_the_fused_tracks_and_moves_them(page, post, api)
            _raises_alerts_that_an_operator_acknowledges(page, post, api)
            _a_click_on_a_track_shows_its_details_and_history(page, api)
            screenshot = tmp_path / "hq_page.png"
            page.screenshot(path=str(screenshot))
            print(f"screenshot of the operator's page: {screenshot}")
            assert screenshot.stat().st_size > 10_000
            assert page.problems == []
    finally:
        post.close()
        api.close()


def _refuses_a_wrong_token(page, url):
    page.goto(url)
    page.get_by_label("API token").fill("not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#login-error")
    error.filter(has_text="Not signed in").wait_for(timeout=10_000)
    assert page.locator("#app").is_hidden()
    page.problems.clear()  # the browser logs the refused request (401) as an error


def _shows_the_post_and_its_drone(page):
    node = page.locator('[data-node="tummo/west-1"]')
    node.wait_for(timeout=15_000)
    text = node.inner_text()
    assert "online" in text and "backlog 0" in text and "drone 1: link ok" in text, text


def _shows_the_fused_tracks_and_moves_them(page, post, api):
    for _ in range(3):
        t = post.send()
        time.sleep(0.3)
    expected = len(post.scene.positions(t))
    page.wait_for_function("n => window.dunewatch && window.dunewatch.state().tracks.length >= n",
                           arg=expected, timeout=20_000)  # fmt: skip
    current = _api_tracks_at(api, t)
    shown = wait_drawn(page, current, t)
    assert shown.keys() == current.keys() and len(shown) == expected
    box = page.locator("#map").bounding_box()
    for gid, track in current.items():
        assert (shown[gid]["lat"], shown[gid]["lon"]) == pytest.approx(
            (track["lat"], track["lon"]), abs=1e-9)  # fmt: skip
        assert 0 <= shown[gid]["x"] <= box["width"] and 0 <= shown[gid]["y"] <= box["height"]
    # One more batch: the walkers move north on the page, by what they walked.
    walkers = [g for g, x in current.items() if x["speed"] > 1.0 and x["target_class"] == "person"]
    assert len(walkers) == post.scene.walkers
    t_next = post.send()
    moved = wait_drawn(page, walkers, t_next)
    latency = moved[walkers[0]]["shownAt"] / 1000 - t_next
    print(f"batch published to track drawn on the page: {latency * 1000:.0f} ms")
    for gid in walkers:
        before, after = shown[gid], moved[gid]
        metres = (after["lat"] - before["lat"]) * 111_000
        assert metres == pytest.approx(1.3 * (after["time"] - before["time"]), rel=0.3)
        assert after["y"] < before["y"]  # north is up on the screen


def _api_tracks_at(api, t: float, timeout_s: float = 20.0) -> dict[int, dict]:
    """HQ's current tracks once all of them hold the batch of time t."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = {x["global_id"]: x for x in api.get("/api/v1/tracks").json()["tracks"]}
        if current and all(x["time"] >= t - 1e-6 for x in current.values()):
            return current
        assert time.monotonic() < deadline, f"HQ never committed the batch of {t}"
        time.sleep(0.1)


def _raises_alerts_that_an_operator_acknowledges(page, post, api):
    distress = page.locator("li.alert.distress")
    crossing = page.locator('li.alert[data-alert-id^="crossing-"]')
    deadline = time.monotonic() + 30
    while not (distress.count() and crossing.count()):
        assert time.monotonic() < deadline, "no distress and crossing alerts on the page"
        post.send()
        time.sleep(0.25)
    banner = page.locator("#distress-banner")
    assert banner.is_visible() and "DISTRESS" in banner.inner_text()
    assert "crossed the border" in crossing.first.inner_text()
    # Distress comes first in the panel, whatever arrived first.
    assert "distress" in page.locator("li.alert").first.get_attribute("class")
    alert_id = distress.first.get_attribute("data-alert-id")
    assert distress.first.get_attribute("data-state") == "open"
    distress.first.get_by_role("button", name="Acknowledge").click()
    page.locator(f'li.alert[data-alert-id="{alert_id}"][data-state="acknowledged"]').wait_for(
        timeout=10_000)  # fmt: skip
    item = page.locator(f'li.alert[data-alert-id="{alert_id}"]')
    assert f"acknowledged by {OPERATOR}" in item.inner_text()
    assert banner.is_hidden()
    stored = api.get(f"/api/v1/alerts/{alert_id}").json()
    assert (stored["state"], stored["acknowledged_by"]) == ("acknowledged", OPERATOR)


def _a_click_on_a_track_shows_its_details_and_history(page, api):
    tracks = api.get("/api/v1/tracks").json()["tracks"]
    [stranded] = [t for t in tracks if t["target_class"] == "person" and t["speed"] < 0.1]
    target = drawn(page)[stranded["global_id"]]
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
    details = page.locator("#details")
    details.get_by_text(f"Track {stranded['global_id']}").wait_for(timeout=10_000)
    details.get_by_text("points (last hour)").wait_for(timeout=10_000)
    text = details.inner_text()
    history = api.get(f"/api/v1/tracks/{stranded['global_id']}/history").json()["points"]
    assert "person" in text and "unknown" in text and f"{len(history)} points" in text, text
    assert len(history) >= 5
    assert page.evaluate("window.dunewatch.state().selected") == stranded["global_id"]
    # A click on empty ground clears the selection.
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] / 2)
    details.wait_for(state="hidden", timeout=5_000)
    page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
    details.get_by_text("points (last hour)").wait_for(timeout=10_000)


ELLIPSES = """async (cases) => {
    const { ellipseOf } = await import("/draw.js");
    return cases.map(([covariance, metresPerPixel]) => ellipseOf(covariance, metresPerPixel));
}"""

PARSE = """async (chunks) => {
    const { EventParser } = await import("/stream.js");
    const events = [];
    const parser = new EventParser((event) => events.push(event));
    chunks.forEach((chunk) => parser.push(chunk));
    return events;
}"""


def test_the_pages_ellipses_and_event_parsing_agree_with_references(stack):
    """The page's own code, run in the browser: its 2-sigma ellipses against numpy's
    eigendecomposition, and its event-stream parser however the bytes are split."""
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(50):
        a = rng.normal(0, 5, (2, 2))
        cases.append(((a @ a.T + np.eye(2) * 0.01).tolist(), float(rng.uniform(0.5, 20))))
    cases.append(([[25.0, 0.0], [0.0, 25.0]], 1.0))  # a circle: any angle will do
    text = ("retry: 3000\n\n: a comment\r\nid: e-1\nevent: snapshot\ndata: {\"a\":\r\n"
            "data: 1}\n\nid: e-2\r\nevent: delta\rdata:{}\n\ndata: x\n\n")  # fmt: skip
    expected = [{"retry": 3000, "name": "message"},
                {"id": "e-1", "name": "snapshot", "data": '{"a":\n1}'},
                {"id": "e-2", "name": "delta", "data": "{}"},
                {"name": "message", "data": "x"}]  # fmt: skip
    with chromium_page() as page:
        page.goto(stack.url)
        ellipses = page.evaluate(ELLIPSES, cases)
        whole = page.evaluate(PARSE, [text])
        split = [page.evaluate(PARSE, [text[:i], text[i:]]) for i in range(1, len(text))]
        by_char = page.evaluate(PARSE, list(text))
    for (covariance, mpp), got in zip(cases, ellipses, strict=True):
        values, vectors = np.linalg.eigh(np.array(covariance))
        assert got["major"] == pytest.approx(2 * np.sqrt(values[1]) / mpp, rel=1e-9)
        assert got["minor"] == pytest.approx(2 * np.sqrt(values[0]) / mpp, rel=1e-6, abs=1e-6)
        if values[1] - values[0] > 1e-6 * values[1]:  # the major axis, up to its sign
            axis = (np.cos(got["theta"]), np.sin(got["theta"]))
            assert abs(np.dot(axis, vectors[:, 1])) == pytest.approx(1.0, abs=1e-9)
    assert whole == expected and by_char == expected
    assert all(events == expected for events in split)
