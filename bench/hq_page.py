"""Operator page benchmark: `python -m bench hq_page [--json] [--updates N] [--crowd N]
[--tick-s S]`.

Time from a fused update at HQ to its appearance on the operator's page. The
setup is the page test's (tests/integration/test_hq_page.py): mosquitto and
`python -m hq run` with its API as processes, a paho client publishing a post's
batches, and the page in Debian's headless chromium driven by Playwright.

Each batch carries its publish time as its data time, and the page stamps each
track with the wall-clock time of the frame that first drew its update, so the
latency of a batch is `drawn - published`: MQTT, ingest and fusion, the
store's commit, the live feed's tick (`--tick-s`, HQ's default 0.5 s), the SSE
stream, and the page's parsing and drawing. `--updates` batches are sent one
after another, each once the page has drawn the one before.

Reference, same run: a plain Python SSE client on the same stream, timed to the
arrival of the delta carrying the same update; the ratio is page / stream, so
what the page itself adds shows apart from HQ's own pipeline.

Two phases: the test's small scene (5 tracks), then the same with `--crowd`
more tracks (1,000 by default). In the busy phase, the map is also dragged
across while frames are counted: the frame interval shows whether it pans
smoothly with that many tracks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench import results
from tests.integration.test_hq_page import (
    CHROMIUM,
    Post,
    Scene,
    chromium_page,
    page_latency,
    running_hq,
    sign_in,
    wait_drawn,
)

WALKER = 1  # the post's track id whose updates are timed


def percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "n": len(samples)}  # fmt: skip


class StreamClock:
    """A plain SSE client: when each update of one global track arrived (wall clock)."""

    def __init__(self, url: str, token: str, global_id: int):
        self.global_id = global_id
        self.arrivals: list[tuple[float, float]] = []  # (data time, arrival)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self._thread.start()

    def _run(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=None) as client:
            with client.stream("GET", "/api/v1/stream") as response:
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line.startswith("data: "):
                        continue
                    arrived = time.time()
                    data = json.loads(line[6:])
                    for track in data.get("updated", []) + data.get("created", []):
                        if track["global_id"] == self.global_id:
                            self.arrivals.append((track["time"], arrived))

    def latency(self, t: float, timeout_s: float = 10.0) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for data_time, arrived in list(self.arrivals):
                if abs(data_time - t) < 1e-3:
                    return arrived - t
            time.sleep(0.005)
        raise TimeoutError(f"the stream never carried the update of {t}")

    def stop(self) -> None:
        self._stop.set()  # the thread ends at the next heartbeat


def measure(page, post: Post, clock: StreamClock, gid: int, updates: int) -> dict:
    page_s, stream_s = [], []
    for _ in range(updates):
        t = post.send()
        page_s.append(page_latency(page, gid, t))
        stream_s.append(clock.latency(t))
    page_p, stream_p = percentiles(page_s), percentiles(stream_s)
    return {"page": page_p, "stream": stream_p,
            "page_minus_stream_p50_ms": float(np.median(np.subtract(page_s, stream_s)) * 1e3),
            "ratio_p50": page_p["p50_ms"] / stream_p["p50_ms"]}  # fmt: skip


PAN_FRAMES = """() => {
    // Frame times for two seconds while the bench drags the map (the page redraws on each
    // move); kept as a promise on window to be collected after the drag.
    const times = [];
    const until = performance.now() + 2000;
    window.benchFrames = new Promise((done) => {
        const frame = (now) => {
            times.push(now);
            if (now < until) requestAnimationFrame(frame);
            else done(times);
        };
        requestAnimationFrame(frame);
    });
}"""


def pan_frames(page) -> dict:
    """Drag the map for two seconds; the frame intervals meanwhile."""
    box = page.locator("#map").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(PAN_FRAMES)
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(60):
        page.mouse.move(x + 150 * np.sin(step / 10), y + 100 * np.cos(step / 10))
        time.sleep(0.025)
    page.mouse.up()
    times = np.array(page.evaluate("window.benchFrames"))
    intervals = np.diff(times)
    return {"frames": len(times), "interval_p50_ms": float(np.percentile(intervals, 50)),
            "interval_p99_ms": float(np.percentile(intervals, 99))}  # fmt: skip


def run(args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, \
            running_hq(Path(tmp), tick_s=args.tick_s) as stack:  # fmt: skip
        scene = Scene()
        post = Post(stack.broker_port, stack.passwords, scene)
        post.status()
        try:
            with chromium_page() as page:
                sign_in(page, stack.url, stack.token)
                t = post.send()
                page.wait_for_function("() => window.dunewatch.state().tracks.length >= 5",
                                       timeout=30_000)  # fmt: skip
                time.sleep(args.tick_s + 0.5)
                with stack.api() as api:
                    [walker] = [x["global_id"] for x in api.get("/api/v1/tracks").json()["tracks"]
                                if x["sources"] == [f"tummo/west-1:{WALKER}"]]  # fmt: skip
                wait_drawn(page, [walker], t)
                clock = StreamClock(stack.url, stack.token, walker)
                time.sleep(1.0)  # the reference client is subscribed
                small = measure(page, post, clock, walker, args.updates)
                small["tracks"] = len(scene.positions(time.time()))

                post.scene = busy = Scene(start=scene.start, crowd=args.crowd)
                post.send()
                page.wait_for_function("(n) => window.dunewatch.state().tracks.length >= n",
                                       arg=args.crowd, timeout=60_000)  # fmt: skip
                crowded = measure(page, post, clock, walker, args.updates)
                crowded["tracks"] = len(busy.positions(time.time()))
                crowded["pan"] = pan_frames(page)
                clock.stop()
        finally:
            post.close()

    return {
        "tick_s": args.tick_s, "updates": args.updates,
        "published_to_drawn": {"small": small, "crowded": crowded},
    }  # fmt: skip


def table(result: dict) -> str:
    rows = [f"Operator page: batch published -> drawn, {result['updates']} updates, "
            f"live-feed tick {result['tick_s']} s",
            f"{'scene':<16}{'page p50':>10}{'page p99':>10}{'SSE p50':>10}{'SSE p99':>10}"
            f"{'ratio':>8}"]  # fmt: skip
    for name, r in result["published_to_drawn"].items():
        label = f"{name} ({r['tracks']})"
        rows.append(f"{label:<16}{r['page']['p50_ms']:>8.0f}ms{r['page']['p99_ms']:>8.0f}ms"
                    f"{r['stream']['p50_ms']:>8.0f}ms{r['stream']['p99_ms']:>8.0f}ms"
                    f"{r['ratio_p50']:>8.2f}")  # fmt: skip
    pan = result["published_to_drawn"]["crowded"]["pan"]
    rows.append(f"panning with the crowd: frame interval p50 {pan['interval_p50_ms']:.1f} ms, "
                f"p99 {pan['interval_p99_ms']:.1f} ms ({pan['frames']} frames in 2 s)")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hq_page", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=20, help="timed batches per phase")
    parser.add_argument("--crowd", type=int, default=1000, help="extra tracks in phase two")
    parser.add_argument("--tick-s", type=float, default=0.5,
                        help="the live feed's tick (HQ's default: 0.5 s)")
    parser.add_argument("--dir", help="where the temporary files go (default: the system's)")
    results.add_json_option(parser, "hq_page")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    result = {**results.header("hq_page", argv, browser=str(CHROMIUM)), **run(args)}
    results.publish(table(result), result, "hq_page" if args.json else None)
    return 0
