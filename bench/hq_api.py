"""HQ API benchmark: `python -m bench hq_api [--json] [--tracks N] [--requests N] [--clients N]`.

1. Current-tracks latency. A store holds `--tracks` live fused tracks (10,000 by
   default, committed through `commit_ingest`). The API runs in its own process
   under uvicorn on loopback; this process times `GET /api/v1/tracks` for all of
   them (one page) and for a box holding about a tenth, `--requests` times each,
   p50 and p99 of the whole HTTP exchange. Reference, same run: the bare store
   query `current_tracks()` in this process; the ratio is API / reference.
2. Live stream. `--clients` SSE clients (50) stay connected while a thread in the
   server process publishes every track once a second (as ingest's batches would,
   1,000 tracks per batch). Reported: delta events and track updates delivered
   per second over all clients, and how many clients the feed had to resync or drop.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench import results
from hq.broker import free_tcp_port
from hq.store.records import FusedTrack, HistoryPoint, IngestBatch
from hq.store.sqlite import SqliteStore
from stack.process import wait_http_ready

NODE = "bench/node-1"
COVARIANCE = (25.0, 1.5, 0.0, 0.0, 1.5, 20.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.01, 0.0, 0.0, 0.01, 0.4)
BOX = "22.82,14.11,22.86,14.15"  # about a tenth of the tracks


def tracks_at(t: float, n: int, rng: np.random.Generator) -> list[FusedTrack]:
    lat = 22.84 + rng.normal(0, 0.05, n)
    lon = 14.13 + rng.normal(0, 0.05, n)
    return [FusedTrack(gid, t, float(lat[gid - 1]), float(lon[gid - 1]), 620.0,
                       (1.0, 2.0, 0.5, 0.5), COVARIANCE, "person", "confirmed", 0.9,
                       (f"{NODE}:{gid}",)) for gid in range(1, n + 1)]  # fmt: skip


def fill(path: Path, n: int) -> None:
    store = SqliteStore(path, synchronous="NORMAL")
    tracks = tracks_at(time.time(), n, np.random.default_rng(1))
    for seq, start in enumerate(range(0, n, 1000)):
        part = tracks[start:start + 1000]
        store.commit_ingest(IngestBatch(time.time(), node_key=NODE, seq=seq, fused_tracks=part,
                                        history=[HistoryPoint.of(t) for t in part]))
    store.close()


def serve(workdir: Path, port: int, n: int, publish_hz: float) -> None:
    """The server process: the API under uvicorn, and a publisher standing in for ingest."""
    import uvicorn

    from hq.api.app import create_app
    from hq.api.live import LiveFeed
    from hq.config import HqConfig

    config = HqConfig.model_validate({
        "origin": [22.84, 14.13, 620.0], "border": [[23.52, 11.99], [22.79, 14.22]],
        "home": [22.84, 14.13], "store": str(workdir / "hq.db"),
        "api": {"port": port, "auth_failures": 1_000_000}})  # fmt: skip
    store = SqliteStore(config.store)
    feed = LiveFeed(**config.api.stream.model_dump())
    app = create_app(store, config, feed)

    def publish():
        rng = np.random.default_rng(2)
        while True:
            started = time.time()
            tracks = tracks_at(started, n, rng)
            for k in range(0, n, 1000):
                feed.publish(IngestBatch(started, fused_tracks=tracks[k:k + 1000]))
            time.sleep(max(0.0, 1 / publish_hz - (time.time() - started)))

    if publish_hz > 0:
        threading.Thread(target=publish, daemon=True).start()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}  # fmt: skip


def time_requests(client: httpx.Client, path: str, count: int, expect: int) -> dict:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:200]
    assert expect < 0 or response.json()["total"] == expect
    return percentiles(samples)


def time_store(path: Path, count: int, bbox=None) -> dict:
    from hq.store.records import BBox

    store = SqliteStore(path, read_only=True)
    box = None if bbox is None else BBox(*map(float, bbox.split(",")))
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        store.current_tracks(bbox=box)
        samples.append(time.perf_counter() - start)
    store.close()
    return percentiles(samples)


async def stream_clients(url: str, token: str, clients: int, seconds: float) -> dict:
    counts = {"events": 0, "tracks": 0, "bytes": 0}

    async def one(client: httpx.AsyncClient):
        async with client.stream("GET", "/api/v1/stream") as response:
            tail = b""
            async for chunk in response.aiter_raw():
                text = tail + chunk
                # Count on the joined text, then keep a tail shorter than either marker,
                # so a marker split across two chunks is counted once.
                counts["events"] += text.count(b"event: delta\n")
                counts["tracks"] += text.count(b'"global_id"')
                counts["bytes"] += len(chunk)
                tail = text[-12:]

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=None,
                                 limits=httpx.Limits(max_connections=clients + 5)) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(clients)]
        await asyncio.sleep(3.0)  # connected and past their snapshots
        start = dict(counts)
        await asyncio.sleep(seconds)
        measured = {k: (counts[k] - start[k]) / seconds for k in counts}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"delta_events_per_s": measured["events"], "track_updates_per_s": measured["tracks"],
            "mb_per_s": measured["bytes"] / 1e6, "clients": clients, "seconds": seconds}


def start_server(workdir: Path, n: int, publish_hz: float) -> tuple[multiprocessing.Process, str]:
    port = free_tcp_port()
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(workdir, port, n, publish_hz), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_http_ready(f"{url}/readyz")
    return process, url


def counter(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def run(args) -> dict:
    from hq.api.tokens import TokenStore

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        fill(workdir / "hq.db", args.tracks)
        with SqliteStore(workdir / "hq.db") as store:
            token, _ = TokenStore(store).create("bench", "viewer")
        in_box = sum(1 for _ in sqlite3.connect(workdir / "hq.db").execute(
            "SELECT 1 FROM fused_tracks WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
            [22.82, 22.86, 14.11, 14.15]))  # fmt: skip

        process, url = start_server(workdir, args.tracks, publish_hz=0)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                              timeout=60) as client:  # fmt: skip
                time_requests(client, f"/api/v1/tracks?limit={args.tracks}", 3, -1)  # warm
                api_all = time_requests(client, f"/api/v1/tracks?limit={args.tracks}",
                                        args.requests, args.tracks)  # fmt: skip
                api_box = time_requests(client, f"/api/v1/tracks?bbox={BOX}", args.requests,
                                        in_box)  # fmt: skip
        finally:
            process.kill()
        store_all = time_store(workdir / "hq.db", args.requests)
        store_box = time_store(workdir / "hq.db", args.requests, BOX)

        process, url = start_server(workdir, args.tracks, publish_hz=1.0)
        try:
            live = asyncio.run(stream_clients(url, token, args.clients, args.seconds))
            metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                                timeout=10).text  # fmt: skip
            live["resyncs"] = counter(metrics, "dunewatch_api_sse_resyncs_total")
            live["drops"] = counter(metrics, "dunewatch_api_sse_drops_total")
        finally:
            process.kill()

    return {
        "tracks": args.tracks, "requests": args.requests, "box_tracks": in_box,
        "current_tracks": {
            "all": {"api": api_all, "store": store_all,
                    "ratio_p50": api_all["p50_ms"] / store_all["p50_ms"]},
            "box": {"api": api_box, "store": store_box,
                    "ratio_p50": api_box["p50_ms"] / store_box["p50_ms"]},
        },
        "stream": live,
    }  # fmt: skip


def table(result: dict) -> str:
    rows = [f"HQ API, {result['tracks']} live tracks, {result['requests']} requests each",
            f"{'query':<28}{'API p50':>10}{'API p99':>10}{'store p50':>11}{'ratio':>8}"]
    for name, label in (("all", f"all {result['tracks']}"),
                        ("box", f"box ({result['box_tracks']} tracks)")):  # fmt: skip
        r = result["current_tracks"][name]
        rows.append(f"{label:<28}{r['api']['p50_ms']:>8.1f}ms{r['api']['p99_ms']:>8.1f}ms"
                    f"{r['store']['p50_ms']:>9.1f}ms{r['ratio_p50']:>8.2f}")
    s = result["stream"]
    rows.append(f"SSE to {s['clients']} clients over {s['seconds']:.0f} s: "
                f"{s['delta_events_per_s']:.0f} delta events/s, "
                f"{s['track_updates_per_s']:.0f} track updates/s, {s['mb_per_s']:.1f} MB/s, "
                f"resyncs {s['resyncs']:.0f}, drops {s['drops']:.0f}")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hq_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dir", help="where the temporary store goes (default: the system's)")
    results.add_json_option(parser, "hq_api")
    args = parser.parse_args(argv)
    result = {**results.header("hq_api", argv, "sqlite"), **run(args)}
    results.publish(table(result), result, "hq_api" if args.json else None)
    return 0
