"""HQ store benchmark: `python -m bench hq_store [--json] [--points N] [--tracks N] [--dir D]`.

1. Write rate. Batches of `--tracks` fused tracks, each committed the way
   ingest does it: one `commit_ingest` transaction that records the batch's
   seq, upserts every track's current row (and its (lat, lon) index entry)
   and adds a history point per track. Reference, measured in the same run on the same
   disk: plain sqlite3 `executemany` of the same history rows into a bare
   table without indexes, one transaction per batch, the same journal mode
   and `synchronous` setting. Both for synchronous=FULL (the store's default)
   and NORMAL. The ratio is store / reference: the price of the indexes,
   upserts and de-dup record.
2. Size. The FULL run's file after a WAL checkpoint, divided by the points
   written, times a million: an extrapolation from `--points` points (200,000
   by default), not a measurement of a million-point file.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import results
from hq.store.records import FusedTrack, HistoryPoint, IngestBatch
from hq.store.sqlite import SqliteStore

NODE = "bench/node-1"
COVARIANCE = (25.0, 1.5, 0.0, 0.0, 1.5, 20.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.01, 0.0, 0.0, 0.01, 0.4)


def a_batch(seq: int, n_tracks: int, rng: np.random.Generator) -> IngestBatch:
    """All `n_tracks` tracks (the same global ids every batch) one second further on."""
    lat = 22.84 + rng.normal(0, 0.05, n_tracks)
    lon = 14.13 + rng.normal(0, 0.05, n_tracks)
    state = rng.normal(0, 500, (n_tracks, 4))
    tracks = [FusedTrack(gid, 1.7e9 + seq, float(lat[gid]), float(lon[gid]), 620.0,
                         tuple(map(float, state[gid])), COVARIANCE, "person", "confirmed", 0.9,
                         (f"{NODE}:{gid}",)) for gid in range(n_tracks)]  # fmt: skip
    return IngestBatch(received=1.7e9 + seq, node_key=NODE, seq=seq, fused_tracks=tracks,
                       history=[HistoryPoint.of(t) for t in tracks])  # fmt: skip


def bench_store(path: Path, n_batches: int, n_tracks: int, synchronous: str) -> float:
    """Seconds spent inside commit_ingest (building the batches is not timed)."""
    rng = np.random.default_rng(1)
    store = SqliteStore(path, synchronous=synchronous)
    spent = 0.0
    for seq in range(n_batches):
        batch = a_batch(seq, n_tracks, rng)
        start = time.perf_counter()
        store.commit_ingest(batch)
        spent += time.perf_counter() - start
    store.close()
    return spent


def bench_reference(path: Path, n_batches: int, n_tracks: int, synchronous: str) -> float:
    """The same history rows into a bare table: executemany, one transaction per batch."""
    rng = np.random.default_rng(1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE points (global_id, time, lat, lon, e, n, ve, vn, var_e, var_n, "
                 "cov_en)")  # fmt: skip
    spent = 0.0
    for seq in range(n_batches):
        rows = [(p.global_id, p.time, p.lat, p.lon, p.e, p.n, p.ve, p.vn, p.var_e, p.var_n,
                 p.cov_en) for p in a_batch(seq, n_tracks, rng).history]  # fmt: skip
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - start
    conn.close()
    return spent


def checkpointed_size(path: Path) -> int:
    """The file's size with everything moved out of the WAL into it."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench hq_store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    results.add_json_option(parser, "hq_store")
    parser.add_argument("--points", type=int, default=200_000, help="history points per run")
    parser.add_argument("--tracks", type=int, default=100, help="tracks per batch")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    args = parser.parse_args(argv)
    n_batches = args.points // args.tracks
    points = n_batches * args.tracks
    report = {**results.header("hq_store", argv, "sqlite"),
              "points": points, "tracks_per_batch": args.tracks, "batches": n_batches,
              "write": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as workdir:
        workdir = Path(workdir)
        for synchronous in ("FULL", "NORMAL"):
            print(f"synchronous={synchronous} ...", file=sys.stderr)
            store_db = workdir / f"store-{synchronous}.db"
            reference_db = workdir / f"reference-{synchronous}.db"
            store_s = bench_store(store_db, n_batches, args.tracks, synchronous)
            reference_s = bench_reference(reference_db, n_batches, args.tracks, synchronous)
            report["write"][synchronous] = {
                "store_points_per_s": points / store_s,
                "store_batches_per_s": n_batches / store_s,
                "reference_points_per_s": points / reference_s,
                "ratio_to_reference": reference_s / store_s,
            }
            if synchronous == "FULL":
                report["size"] = size_report(store_db, reference_db, points)
    results.publish(format_report(report), report, "hq_store" if args.json else None)
    return 0


def size_report(store_db: Path, reference_db: Path, points: int) -> dict:
    store_bytes, reference_bytes = checkpointed_size(store_db), checkpointed_size(reference_db)
    return {"measured_points": points, "store_bytes": store_bytes,
            "store_bytes_per_point": store_bytes / points,
            "store_mb_per_million_points": store_bytes / points * 1e6 / 1e6,
            "reference_mb_per_million_points": reference_bytes / points * 1e6 / 1e6,
            "extrapolated": True}  # fmt: skip


def format_report(report: dict) -> str:
    lines = [f"{report['points']:,} history points in {report['batches']:,} batches of "
             f"{report['tracks_per_batch']} tracks (one transaction per batch: seq record, "
             "current upserts, history points)"]  # fmt: skip
    for mode, w in report["write"].items():
        lines.append(f"  synchronous={mode:<6} store {w['store_points_per_s']:>9,.0f} points/s "
                     f"({w['store_batches_per_s']:,.0f} batches/s); bare executemany "
                     f"{w['reference_points_per_s']:>9,.0f} points/s; "
                     f"ratio {w['ratio_to_reference']:.2f}")  # fmt: skip
    size = report["size"]
    lines.append(f"  size: {size['store_bytes_per_point']:.0f} B per point, "
                 f"{size['store_mb_per_million_points']:.0f} MB per million points (extrapolated "
                 f"from {size['measured_points']:,}); bare table "
                 f"{size['reference_mb_per_million_points']:.0f} MB per million")  # fmt: skip
    return "\n".join(lines)
