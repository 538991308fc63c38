"""HQ ingest benchmark: `python -m bench hq [--json] [--store sqlite|postgresql://...]...
[--nodes N] [--tracks N] [--cycles N] [--rate R]`.

The whole ingest path in one process, as `IngestClient` drives it: messages
are queued as they arrive and a `GroupWriter` thread takes everything
waiting (up to `--max-group` messages), validates, de-duplicates, fuses and
runs the alert detectors on each, commits the group in ONE store
transaction (SQLite: WAL, synchronous=FULL; PostgreSQL: the server's
synchronous_commit, `on` by default) and then reports each message done,
where IngestClient would acknowledge it. One writer; each `--store` in turn
on the same messages (a PostgreSQL URL names the server: the run makes its
own databases there), and each backend as a ratio to the first. N nodes each publish batches of
`--tracks` tracks per cycle; a third of each node's objects are also seen by
its neighbour, so fusion merges. The MQTT hop itself is measured by
`python -m bench uplink`.

Two runs, each on a fresh database: throughput with every message offered at
once (a backlog, the heaviest load); latency from receipt to committed fused
track (p50, p99) with the batches arriving at a steady pace of `--rate`
track updates per second, by default half the throughput just measured (a
load above capacity would only measure the queue growing). Then the database bytes per
million history points (the file after its WAL is checkpointed on close,
including current tracks and node tracks). Reference in the same run: the
same batches through validation and fusion only (no store, no alerts), as a
ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from bench import results
from bench.scratch_store import add_store_option, backend_name, label, scratch
from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, NodeHealthDetector
from hq.fusion import Fusion, FusionConfig, warm_kernels
from hq.ingest import Ingest, Received
from hq.ingest.client import GroupWriter
from hq.store import open_store
from wire import topics
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, decode, encode

ORIGIN = (22.84, 14.13, 620.0)


def node_frames(n_nodes: int) -> list[EnuFrame]:
    """Posts 8 km apart along the border."""
    origin = EnuFrame(*ORIGIN)
    frames = []
    for k in range(n_nodes):
        lat, lon, _ = origin.to_geodetic(8000.0 * k, 0.0, 0.0)
        frames.append(EnuFrame(float(lat), float(lon), ORIGIN[2]))
    return frames


def payloads(n_nodes: int, n_tracks: int, cycles: int, start: float, rng) -> list[tuple]:
    """(topic, payload) per node per cycle; objects near each post, a third shared."""
    origin = EnuFrame(*ORIGIN)
    frames = node_frames(n_nodes)
    objects = [rng.uniform([-3000, 1000], [3000, 5000], (n_tracks, 2)) + [8000.0 * k, 0.0]
               for k in range(n_nodes)]  # fmt: skip
    velocity = rng.normal(0, 1.0, (n_nodes, n_tracks, 2))
    shared = n_tracks // 3
    for k in range(1, n_nodes):  # the first third of node k's objects are node k-1's last third
        objects[k][:shared] = objects[k - 1][-shared:]
        velocity[k][:shared] = velocity[k - 1][-shared:]
    messages = []
    for cycle in range(cycles):
        t = start + cycle
        for k, frame in enumerate(frames):
            where = objects[k] + velocity[k] * cycle + rng.normal(0, 2.0, (n_tracks, 2))
            lat, lon, _ = origin.to_geodetic(where[:, 0], where[:, 1], np.zeros(n_tracks))
            local = np.stack(frame.from_geodetic(lat, lon, np.full(n_tracks, frame.alt)), 1)
            tracks = [Track(track_id=j + 1, time=t, lat=float(lat[j]), lon=float(lon[j]),
                            alt=frame.alt, position_enu=(float(local[j, 0]), float(local[j, 1])),
                            velocity_enu=(float(velocity[k, j, 0]), float(velocity[k, j, 1])),
                            position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                            velocity_covariance=[[0.25, 0.0], [0.0, 0.25]],
                            target_class="person", status="confirmed", quality=0.99, hits=20)
                      for j in range(n_tracks)]  # fmt: skip
            batch = TrackBatch(site="bench", node=f"post-{k}", seq=cycle, sent=t,
                               frame_origin=(frame.lat, frame.lon, frame.alt), tracks=tracks)
            messages.append((topics.tracks("bench", f"post-{k}"), encode(batch)))
    return messages


def make_ingest(store: str) -> Ingest:
    frame = EnuFrame(*ORIGIN)
    alerts = AlertConfig(border=((23.52, 11.99), (22.79, 14.22), (23.00, 15.00)),
                         home=ORIGIN[:2])  # fmt: skip
    return Ingest(open_store(store), Fusion(FusionConfig(origin=ORIGIN)),
                  CrossingDetector(alerts, frame), DistressDetector(alerts, frame),
                  NodeHealthDetector(alerts))  # fmt: skip


@dataclass
class Run:
    elapsed_s: float
    latencies_ms: list[float]
    groups: int
    ingest: Ingest


def ingest_run(db: str, messages: list[tuple], max_group: int,
               interval_s: float = 0.0) -> Run:  # fmt: skip
    """Offer `messages` to a GroupWriter, one every `interval_s` (0: all at once), and wait
    until each is committed; latency is receipt (queueing) to commit."""
    ingest = make_ingest(db)
    latencies, finished = [], threading.Event()

    def done(offered: float, outcome: str) -> None:
        assert outcome == "stored", outcome
        latencies.append((time.perf_counter() - offered) * 1e3)
        if len(latencies) == len(messages):
            finished.set()

    writer = GroupWriter(ingest, done, max_group=max_group, tick_s=None).start()
    began = time.perf_counter()
    for k, (topic, payload) in enumerate(messages):
        if interval_s:
            _sleep_until(began + k * interval_s)
        writer.put(Received(topic, payload, time.time()), time.perf_counter())
    finished.wait()
    elapsed = time.perf_counter() - began
    writer.stop()
    return Run(elapsed, latencies, ingest.counters.groups, ingest)


def _sleep_until(deadline: float) -> None:
    pause = deadline - time.perf_counter()
    if pause > 0:
        time.sleep(pause)


def database_size(run: Run, db: str) -> tuple[int, int, int]:
    """(history points, fused tracks, bytes): a SQLite file measured after close, when
    SQLite has checkpointed the WAL into it; a PostgreSQL database as the server sizes it."""
    stats = run.ingest.store.stats()
    run.ingest.store.close()
    if backend_name(db) == "postgresql":
        return stats.rows["track_points"], stats.rows["fused_tracks"], stats.file_bytes
    return stats.rows["track_points"], stats.rows["fused_tracks"], Path(db).stat().st_size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hq", description=__doc__)
    results.add_json_option(parser, "hq")
    add_store_option(parser, "the store ingest writes to")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--max-group", type=int, default=200, help="messages per transaction")
    parser.add_argument("--rate", type=float, default=None,
                        help="offered track updates per second in the latency run "
                             "(default: half the throughput measured first)")
    args = parser.parse_args(argv)
    warm_kernels()
    start = time.time()
    messages = payloads(args.nodes, args.tracks, args.cycles, start, np.random.default_rng(1))
    updates = args.nodes * args.tracks * args.cycles
    # Reference: validation and fusion alone, the same batches.
    fusion = Fusion(FusionConfig(origin=ORIGIN))
    began = time.perf_counter()
    for _, payload in messages:
        fusion.ingest(decode(payload), time.time())
    fusion_only = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as workdir:
        runs = [run_store(store, Path(workdir), updates, fusion_only, args)
                for store in args.store or ["sqlite"]]  # fmt: skip
    for run in runs[1:]:
        run["per_writer_ratio_to_first"] = run["updates_per_s"] / runs[0]["updates_per_s"]
    report = {
        **results.header("hq", argv, "numpy", "numba", "sqlite", psycopg=psycopg.__version__),
        "nodes": args.nodes, "tracks_per_batch": args.tracks, "cycles": args.cycles,
        "max_group": args.max_group, "track_updates": updates,
        "fusion_only_updates_per_s": updates / fusion_only,
        **runs[0], "stores": runs,
    }  # fmt: skip
    results.publish(format_report(report), report, "hq" if args.json else None)
    return 0


def run_store(store: str, workdir: Path, updates: int, fusion_only: float, args) -> dict:
    """Throughput and latency of ingest into fresh stores of one backend. The messages are
    made afresh, so that each backend's are as new when offered (fusion reads their age)."""
    messages = payloads(args.nodes, args.tracks, args.cycles, time.time(),
                        np.random.default_rng(1))  # fmt: skip
    with scratch(store, workdir, "saturated") as db:
        saturated = ingest_run(db, messages, args.max_group)
        points, fused_tracks, size = database_size(saturated, db)
    rate = args.rate or 0.5 * updates / saturated.elapsed_s
    with scratch(store, workdir, "paced") as db:
        paced = ingest_run(db, messages, args.max_group, interval_s=args.tracks / rate)
        paced.ingest.store.close()
    return {
        "store": label(store), "backend": backend_name(store),
        "updates_per_s": updates / saturated.elapsed_s,
        "batches_per_transaction": len(messages) / saturated.groups,
        "ratio_to_fusion_only": fusion_only / saturated.elapsed_s,
        "offered_updates_per_s": rate,
        "paced_updates_per_s": updates / paced.elapsed_s,
        "paced_batches_per_transaction": len(messages) / paced.groups,
        "latency_p50_ms": float(np.percentile(paced.latencies_ms, 50)),
        "latency_p99_ms": float(np.percentile(paced.latencies_ms, 99)),
        "saturated_latency_p99_ms": float(np.percentile(saturated.latencies_ms, 99)),
        "history_points": points, "database_bytes": size,
        "bytes_per_million_points": size / points * 1e6 if points else None,
        "fused_tracks": fused_tracks,
    }  # fmt: skip


def format_report(r: dict) -> str:
    lines = [
        f"{r['nodes']} posts x {r['tracks_per_batch']} tracks per batch x {r['cycles']} cycles "
        f"= {r['track_updates']:,} track updates; {r['fused_tracks']} fused tracks",
        f"  validation and fusion alone (reference): {r['fusion_only_updates_per_s']:,.0f}/s",
    ]
    for s in r["stores"]:
        ratio = s.get("per_writer_ratio_to_first")
        lines += [
            f"  {s['store']}, one writer (validate, de-dup, fuse, alerts, group commit), all "
            f"offered at once: {s['updates_per_s']:,.0f} track updates/s "
            f"({s['batches_per_transaction']:.1f} batches per transaction; "
            f"{s['ratio_to_fusion_only']:.2f}x fusion alone"
            + (f"; {ratio:.2f}x {r['stores'][0]['store']}" if ratio else "") + ")",
            f"    offered {s['offered_updates_per_s']:,.0f} updates/s at a steady pace: kept up "
            f"at {s['paced_updates_per_s']:,.0f}/s, {s['paced_batches_per_transaction']:.1f} "
            f"batches per transaction; receipt to committed fused track p50 "
            f"{s['latency_p50_ms']:.1f} ms, p99 {s['latency_p99_ms']:.1f} ms (all at once: p99 "
            f"{s['saturated_latency_p99_ms']:.0f} ms, mostly queueing)",
            f"    database: {s['database_bytes'] / 1e6:.1f} MB for {s['history_points']:,} "
            f"history points = {s['bytes_per_million_points'] / 1e6:.0f} MB per million points "
            f"(with current tracks and node tracks)",
        ]  # fmt: skip
    return "\n".join(lines)
