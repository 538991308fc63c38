"""History in a box and an hour: `python -m bench hq_history [--json] [--store S]...
[--points N] [--tracks N] [--queries N]`.

A store holds `--points` history points (a million by default): `--tracks` tracks
walking for a day in a 1 x 1 degree area near the posts, written through
`commit_ingest_many` in groups of 20,000 points (the fill rate is reported too).
Then `--queries` random windows of one hour and boxes of 0.2 x 0.2 degrees (the
replay an operator asks for: what was near the post at 02:14) through
`Store.history_in_box`. Reported per backend: query p50 and p99, points per answer,
and the same selection done by NumPy over the points in memory (the reference, same
run) as a ratio. Each `--store` in turn, on the same points.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from bench import results
from bench.scratch_store import add_store_option, label, scratch
from hq.store import open_store
from hq.store.records import BBox, HistoryPoints, IngestBatch

ORIGIN = (22.84, 14.13)
DAY = 86_400.0
GROUP = 20_000


def day_of_points(points: int, tracks: int, start: float, rng) -> HistoryPoints:
    per_track = points // tracks
    dt = DAY / per_track
    gid = np.repeat(np.arange(1, tracks + 1), per_track)
    t = start + np.tile(np.arange(per_track) * dt, tracks) + rng.uniform(0, dt, tracks).repeat(
        per_track)  # fmt: skip
    steps = rng.normal(0, 2e-4, (tracks, per_track, 2)).cumsum(axis=1)
    where = rng.uniform(-0.5, 0.5, (tracks, 1, 2)) + steps
    lat = ORIGIN[0] + where[..., 0].ravel()
    lon = ORIGIN[1] + where[..., 1].ravel()
    zeros = np.zeros(gid.size)
    return HistoryPoints(gid, t, lat, lon, zeros, zeros, zeros, zeros, zeros + 4.0, zeros + 4.0,
                         zeros)  # fmt: skip


def queries(n: int, start: float, rng) -> list[tuple[BBox, float, float]]:
    found = []
    for _ in range(n):
        south = ORIGIN[0] + rng.uniform(-0.5, 0.3)
        west = ORIGIN[1] + rng.uniform(-0.5, 0.3)
        t0 = start + rng.uniform(0, DAY - 3600)
        found.append((BBox(south, west, south + 0.2, west + 0.2), t0, t0 + 3600))
    return found


def run_store(store: str, workdir: Path, points: HistoryPoints,
              asked: list[tuple[BBox, float, float]]) -> dict:  # fmt: skip
    with scratch(store, workdir, "history") as location:
        with open_store(location) as target:
            began = time.perf_counter()
            for seq, k in enumerate(range(0, len(points), GROUP)):
                chunk = points.take(np.arange(k, min(k + GROUP, len(points))))
                target.commit_ingest_many([IngestBatch(time.time(), node_key="bench/post-0",
                                                       seq=seq, history=chunk)])
            fill_s = time.perf_counter() - began
            target.history_in_box(*asked[0])  # warm the cache as a running HQ's would be
            samples, sizes = [], []
            for box, t0, t1 in asked:
                began = time.perf_counter()
                sizes.append(len(target.history_in_box(box, t0, t1)))
                samples.append(time.perf_counter() - began)
    ms = np.array(samples) * 1e3
    return {"store": label(store), "fill_points_per_s": len(points) / fill_s,
            "query_p50_ms": float(np.percentile(ms, 50)),
            "query_p99_ms": float(np.percentile(ms, 99)),
            "points_per_answer": float(np.mean(sizes)), "sizes": sizes}  # fmt: skip


def numpy_reference(points: HistoryPoints, asked) -> tuple[float, list[int]]:
    samples, sizes = [], []
    for box, t0, t1 in asked:
        began = time.perf_counter()
        keep = ((points.time >= t0) & (points.time <= t1) & (points.lat >= box.south)
                & (points.lat <= box.north) & (points.lon >= box.west)
                & (points.lon <= box.east))  # fmt: skip
        sizes.append(int(np.count_nonzero(keep)))
        samples.append(time.perf_counter() - began)
    return float(np.percentile(np.array(samples) * 1e3, 50)), sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hq_history", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    results.add_json_option(parser, "hq_history")
    add_store_option(parser, "the store to fill and query")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    start = time.time() - DAY
    points = day_of_points(args.points, args.tracks, start, rng)
    asked = queries(args.queries, start, rng)
    reference_ms, expected = numpy_reference(points, asked)
    with tempfile.TemporaryDirectory() as workdir:
        runs = [run_store(store, Path(workdir), points, asked)
                for store in args.store or ["sqlite"]]  # fmt: skip
    for run in runs:
        if run.pop("sizes") != expected:
            raise AssertionError(f"{run['store']} answered other points than the reference")
        run["ratio_to_numpy_p50"] = run["query_p50_ms"] / reference_ms
    report = {**results.header("hq_history", argv, "numpy", "sqlite",
                               psycopg=psycopg.__version__),
              "points": len(points), "tracks": args.tracks, "queries": args.queries,
              "box_degrees": 0.2, "window_s": 3600, "numpy_p50_ms": reference_ms,
              "stores": runs}  # fmt: skip
    results.publish(table(report), report, "hq_history" if args.json else None)
    return 0


def table(r: dict) -> str:
    lines = [f"history in a 0.2 x 0.2 degree box and one hour, {r['points']:,} points of "
             f"{r['tracks']} tracks over a day, {r['queries']} queries; NumPy over the points "
             f"in memory (reference): p50 {r['numpy_p50_ms']:.1f} ms"]
    for s in r["stores"]:
        lines.append(f"  {s['store']}: p50 {s['query_p50_ms']:.1f} ms, p99 "
                     f"{s['query_p99_ms']:.1f} ms ({s['ratio_to_numpy_p50']:.2f}x NumPy), "
                     f"{s['points_per_answer']:,.0f} points per answer; filled at "
                     f"{s['fill_points_per_s']:,.0f} points/s")
    return "\n".join(lines)
