"""Load and soak: `python -m bench soak [--quick] [--json [PATH]] [--posts N] [--drones N]
[--tracks-per-drone N] [--rate-hz R] [--minutes M]`.

Many border posts at full rate into one HQ on loopback, for minutes: does HQ keep
up, and does anything grow that should not?

- A private mosquitto with the project's broker config (per-node accounts, ACL).
- HQ as the real process, `python -m hq run`, with its API, so that the live
  stream (SSE) runs too; one SSE client in this process watches it.
- `--posts` simulated posts, each an MQTT v5 client with its own node's
  credentials, publishing as an edge node does, QoS 1: a TrackBatch at
  `--rate-hz` with the tracks of its `--drones` drones' cameras
  (`--tracks-per-drone` each: walkers and vehicles on straight or wandering
  paths, state errors and ENU covariances of a steady-state Kalman filter
  looking along the camera's line of sight), VehicleTelemetry for each drone at
  the same rate, and a retained NodeStatus every 10 s. The outermost drones of
  neighbouring posts watch the same patch of desert, so HQ fuses those tracks.

Measured: sustained throughput stored at HQ (from its store), latency from a
batch's publish to its receipt at HQ (the store's `seen_batches.received`, read
read-only) and to its fused state's first appearance on the live stream, HQ's
RSS every sample with its growth over the second half (linear fit), the
database and WAL size over time, batches dropped or duplicated, and HQ's
ingest counters (/metrics, and its log line at stop). Every timing is
absolute: this is a soak on this machine, so the load average is reported too.
"""

from __future__ import annotations

import argparse
import getpass
import heapq
import os
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import numpy as np
import psutil

from bench import results
from bench.soak_hq import HqProcess, StreamWatcher, create_token, read_metrics, write_hq_config
from bench.soak_posts import SITE, Ground, Layout, Post
from hq.broker import BrokerProcess, free_tcp_port, username, write_broker_config
from hq.store.sqlite import SqliteStore
from stack.process import wait_http_ready

READY_TIMEOUT_S = 300.0  # a cold Numba cache compiles for tens of seconds (or minutes when shared)



# --- samples over time -------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Every `period_s`: HQ's and the broker's memory and CPU, the database and its WAL,
    what the store holds, HQ's metrics, the machine's load."""

    def __init__(self, period_s: float, hq: psutil.Process, broker: psutil.Process,
                 database: Path, url: str, token: str, posts: list[Post], t0: float):  # fmt: skip
        super().__init__(daemon=True, name="soak-sampler")
        self.period_s, self.hq, self.broker, self.database = period_s, hq, broker, database
        self.url, self.token, self.posts, self.t0 = url, token, posts, t0
        self.samples: list[dict] = []
        self.me = psutil.Process()
        self._halt = threading.Event()
        self.store = SqliteStore(database, read_only=True)
        self.conn = read_only(database)  # for what the store's interface does not answer

    def run(self) -> None:
        for process in (self.hq, self.broker, self.me):
            process.cpu_percent()  # the first call only starts the interval
        while not self._halt.wait(self.period_s):
            s = self.sample()
            self.samples.append(s)
            stored = f"{s['batches_stored']}/{s['batches_published']}"
            print(f"t={s['t_s']:6.0f} s  HQ RSS {s['hq_rss_mb']:6.1f} MB  "
                  f"CPU {s['hq_cpu_pct']:3.0f}%  stored {stored} batches  db+WAL "
                  f"{(s['db_bytes'] + s['wal_bytes']) / 1e6:6.1f} MB  load {s['load_1min']:.2f}",
                  file=sys.stderr, flush=True)  # fmt: skip

    def sample(self) -> dict:
        wal = self.database.with_name(self.database.name + "-wal")
        stats = self.store.stats()
        try:
            metrics = read_metrics(self.url, self.token)
        except httpx.HTTPError as error:
            metrics = {"error": str(error)}
        return {
            "t_s": round(time.time() - self.t0, 2),
            "hq_rss_mb": self.hq.memory_info().rss / 1e6,
            "hq_cpu_pct": self.hq.cpu_percent(),
            "broker_rss_mb": self.broker.memory_info().rss / 1e6,
            "broker_cpu_pct": self.broker.cpu_percent(),
            "loadgen_cpu_pct": self.me.cpu_percent(),
            "load_1min": os.getloadavg()[0],
            "db_bytes": self.database.stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            "batches_published": sum(len(p.sent) for p in self.posts),
            "batches_stored": sum(n.batches for n in self.store.nodes()),
            "track_points": stats.rows["track_points"],
            "fused_tracks_by_status": dict(self.conn.execute(
                "SELECT status, COUNT(*) FROM fused_tracks GROUP BY status").fetchall()),
            "metrics": metrics,
        }  # fmt: skip

    def stop(self) -> None:
        """Stop sampling, with one last sample now."""
        self._halt.set()
        self.join(self.period_s + 30)
        self.samples.append(self.sample())
        self.store.close()
        self.conn.close()


# --- the run ---------------------------------------------------------------------------------

@dataclass
class Raw:
    """What a run leaves to be summarised."""

    t0: float  # UTC s when publishing began
    hq_start_s: float
    exit_code: int
    hq: HqProcess
    posts: list[Post]
    published: dict[tuple[str, int], float]  # (node key, seq) -> UTC s of publish
    lags: list[float]
    drain_s: float | None
    samples: list[dict]
    metrics: dict[str, float]
    store: dict
    watcher: StreamWatcher | None


def drive(posts: list[Post], rate_hz: float, status_s: float, duration_s: float,
          sent: dict[tuple[str, float], float]) -> list[float]:  # fmt: skip
    """Publish for `duration_s` on a fixed schedule, the posts out of step with each other as
    independent posts are. Returns how late each tick was (the load generator's own lag)."""
    period = 1.0 / rate_hz
    start = time.time() + 0.5
    due = [(start + k * period / len(posts), "tick", k) for k in range(len(posts))]
    due += [(start + k * status_s / len(posts), "status", k) for k in range(len(posts))]
    heapq.heapify(due)
    lags, end = [], start + duration_s
    while due[0][0] < end:
        when, kind, k = heapq.heappop(due)
        pause = when - time.time()
        if pause > 0:
            time.sleep(pause)
        now = time.time()
        if kind == "tick":
            lags.append(now - when)
            posts[k].publish_tick(now, sent)
            heapq.heappush(due, (when + period, kind, k))
        else:
            posts[k].publish_status()
            heapq.heappush(due, (when + status_s, kind, k))
    return lags


def read_only(database: Path) -> sqlite3.Connection:
    # Autocommit, so no snapshot stays open to hold back HQ's WAL checkpoints; usable from
    # another thread, as the sampler's last sample is taken after its thread ended.
    conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def wait_drained(database: Path, expected: int, timeout_s: float) -> float | None:
    """Seconds until HQ has stored `expected` batches after the last publish; None if not."""
    began = time.monotonic()
    conn = read_only(database)
    try:
        while time.monotonic() - began < timeout_s:
            if conn.execute("SELECT COUNT(*) FROM seen_batches").fetchone()[0] >= expected:
                return time.monotonic() - began
            time.sleep(0.2)
        return None
    finally:
        conn.close()


def run(args: argparse.Namespace) -> dict:
    layout = Layout(args.posts, args.drones, args.tracks_per_drone, args.spacing_m)
    duration_s = args.minutes * 60.0
    rng = np.random.default_rng(args.seed)
    names = [f"post-{k + 1:02d}" for k in range(layout.posts)]
    with tempfile.TemporaryDirectory(prefix="dunewatch-soak-", dir=args.dir) as tmp:
        work = Path(tmp)
        (work / "hq").mkdir()
        broker_port, api_port = free_tcp_port(), free_tcp_port()
        passwords = write_broker_config(work / "broker", [(SITE, n) for n in names],
                                        port=broker_port, bind="127.0.0.1",
                                        run_as=getpass.getuser())  # fmt: skip
        broker = BrokerProcess(work / "broker" / "mosquitto.conf", broker_port).start()
        hq, posts, watcher, sampler = None, [], None, None
        try:
            config = write_hq_config(work / "hq", layout, broker_port, api_port)
            database = work / "hq" / "hq.db"
            token = create_token(database)
            began = time.monotonic()
            hq = HqProcess(config, passwords["hq"], work / "hq.log").start()
            print("waiting for HQ (a cold Numba cache takes a while) ...", file=sys.stderr)
            hq.wait_for_line("HQ running", READY_TIMEOUT_S)
            url = f"http://127.0.0.1:{api_port}"
            wait_http_ready(f"{url}/readyz", hq)
            hq_start_s = time.monotonic() - began
            sent: dict[tuple[str, float], float] = {}
            if not args.no_stream:
                watcher = StreamWatcher(url, token, sent)
                watcher.start()
            t0 = time.time()
            ground = Ground(layout, rng, t0)
            posts = [Post(k, layout, ground, 1.0 / args.rate_hz,
                          passwords[username(SITE, names[k])], broker_port,
                          np.random.default_rng([args.seed, k])) for k in range(layout.posts)]
            for post in posts:
                if not post.connected.wait(10):
                    raise RuntimeError(f"{post.name} could not connect to the broker")
            sampler = Sampler(args.sample_s, psutil.Process(hq.process.pid),
                              psutil.Process(broker.process.pid), database, url, token, posts,
                              t0)  # fmt: skip
            sampler.start()
            print(f"publishing for {duration_s:.0f} s ...", file=sys.stderr)
            lags = drive(posts, args.rate_hz, args.status_s, duration_s, sent)
            published = {(p.key, seq): t for p in posts for seq, t in p.sent.items()}
            drain_s = wait_drained(database, len(published), timeout_s=120.0)
            time.sleep(1.0)  # the last batches' fused states reach the stream on the next tick
            sampler.stop()
            metrics = read_metrics(url, token)
            if watcher is not None:
                watcher.stop()
            store = read_store(database)  # before the posts say offline: alerts of the load only
            for post in posts:
                post.stop()
            exit_code = hq.stop()
            store["closed_bytes"] = database.stat().st_size  # the WAL checkpointed at close
        finally:
            if watcher is not None:
                watcher.stop()
            for post in posts:
                post.stop()
            if hq is not None:
                hq.stop()
            broker.stop()
        raw = Raw(t0, hq_start_s, exit_code, hq, posts, published, lags, drain_s,
                  sampler.samples, metrics, store, watcher)  # fmt: skip
        return summarise(args, layout, duration_s, raw)


def read_store(database: Path) -> dict:
    """What HQ stored, read-only: each batch's receipt time, the fused picture, alerts."""
    conn = read_only(database)
    try:
        seen = {(key, seq): received for key, seq, received in
                conn.execute("SELECT node_key, seq, received FROM seen_batches")}  # fmt: skip
        return {
            "seen": seen,
            "fused_by_status": dict(conn.execute(
                "SELECT status, COUNT(*) FROM fused_tracks GROUP BY status").fetchall()),
            "alerts_by_type": dict(conn.execute(
                "SELECT alert_type, COUNT(*) FROM alerts GROUP BY alert_type").fetchall()),
            "dead_letters": conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0],
            "track_points": conn.execute("SELECT COUNT(*) FROM track_points").fetchone()[0],
        }  # fmt: skip
    finally:
        conn.close()


# --- the figures -----------------------------------------------------------------------------

def percentiles_ms(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = np.array(seconds) * 1e3
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}  # fmt: skip


def slope_per_min(samples: list[dict], key: str, since_s: float) -> float | None:
    """Least-squares growth of `key` per minute over the samples from `since_s` on."""
    rows = [s for s in samples if s["t_s"] >= since_s]
    if len(rows) < 3:
        return None
    t = np.array([r["t_s"] for r in rows]) / 60.0
    return float(np.polyfit(t, np.array([float(r[key]) for r in rows]), 1)[0])


def summarise(args: argparse.Namespace, layout: Layout, duration_s: float, raw: Raw) -> dict:
    samples = raw.samples
    for s in samples:
        s["db_wal_bytes"] = s["db_bytes"] + s["wal_bytes"]
    warmup_s = min(60.0, duration_s / 5)  # HQ's caches fill and fusion builds its picture
    steady = [s for s in samples if s["t_s"] >= warmup_s]
    half_s = duration_s / 2
    tracks_per_batch = layout.drones * layout.tracks_per_drone
    batches_per_s = (slope_per_min(samples, "batches_stored", warmup_s) or 0.0) / 60
    points_per_s = (slope_per_min(samples, "track_points", warmup_s) or 0.0) / 60

    seen, published = raw.store["seen"], raw.published
    dropped = sorted(k for k in published if k not in seen)
    receipt = {k: seen[k] - t for k, t in published.items() if k in seen}
    first_half = [v for k, v in receipt.items() if published[k] < raw.t0 + half_s]
    second_half = [v for k, v in receipt.items() if published[k] >= raw.t0 + half_s]
    stream = list(raw.watcher.latency.values()) if raw.watcher else []

    first_steady, last = (steady or samples)[0], samples[-1]
    grown_points = last["track_points"] - first_steady["track_points"]
    grown_bytes = last["db_wal_bytes"] - first_steady["db_wal_bytes"]
    m, counters = raw.metrics, {p.name: p.counters for p in raw.posts}
    ingest = {k.removeprefix("dunewatch_hq_ingest_"): v for k, v in m.items()
              if k.startswith("dunewatch_hq_ingest_")}  # fmt: skip
    live = [s for s in samples if s["t_s"] >= warmup_s] or samples
    loaded = [s for s in samples if s["t_s"] <= duration_s + 1.0] or samples
    return {
        "parameters": {"posts": layout.posts, "drones": layout.drones,
                       "tracks_per_drone": layout.tracks_per_drone, "rate_hz": args.rate_hz,
                       "seconds": duration_s, "status_s": args.status_s,
                       "sample_s": args.sample_s, "spacing_m": layout.spacing_m,
                       "seed": args.seed, "warmup_s": warmup_s},
        "offered": {
            "batches_per_s": layout.posts * args.rate_hz,
            "track_updates_per_s": layout.posts * args.rate_hz * tracks_per_batch,
            "telemetry_per_s": layout.posts * layout.drones * args.rate_hz,
            "node_tracks": layout.posts * tracks_per_batch,
            "distinct_targets": layout.patches * layout.tracks_per_drone,
        },
        "throughput": {
            "batches_per_s": batches_per_s,
            "track_updates_per_s": batches_per_s * tracks_per_batch,
            "history_points_per_s": points_per_s,
            "ratio_to_offered": batches_per_s / (layout.posts * args.rate_hz),
            "drain_after_last_publish_s": raw.drain_s,
        },
        "latency_ms": {
            "publish_to_hq_receipt": percentiles_ms(list(receipt.values())),
            "publish_to_hq_receipt_first_half": percentiles_ms(first_half),
            "publish_to_hq_receipt_second_half": percentiles_ms(second_half),
            "publish_to_sse_stream": percentiles_ms(stream),
            "loadgen_tick_lag": percentiles_ms(raw.lags),
        },
        "memory": {
            "hq_rss_mb_first": samples[0]["hq_rss_mb"], "hq_rss_mb_last": last["hq_rss_mb"],
            "hq_rss_mb_max": max(s["hq_rss_mb"] for s in samples),
            "hq_rss_growth_mb_per_min_second_half": slope_per_min(samples, "hq_rss_mb", half_s),
            "hq_rss_growth_mb_per_min_first_half": slope_per_min(
                [s for s in samples if s["t_s"] <= half_s], "hq_rss_mb", 0.0),
            "broker_rss_mb_last": last["broker_rss_mb"],
            "broker_rss_growth_mb_per_min_second_half": slope_per_min(samples, "broker_rss_mb",
                                                                      half_s),
        },  # fmt: skip
        "database": {
            "db_bytes_last": last["db_bytes"], "wal_bytes_last": last["wal_bytes"],
            "wal_bytes_max": max(s["wal_bytes"] for s in samples),
            "bytes_per_min": slope_per_min(samples, "db_wal_bytes", warmup_s),
            "bytes_per_million_points": grown_bytes / grown_points * 1e6 if grown_points else None,
            "track_points": raw.store["track_points"],
            "closed_bytes": raw.store["closed_bytes"],
            "closed_bytes_per_million_points": raw.store["closed_bytes"]
            / max(1, raw.store["track_points"]) * 1e6,
        },  # fmt: skip
        "batches": {
            "published": len(published), "stored": len(seen), "dropped": len(dropped),
            "dropped_first": [f"{k}#{s}" for k, s in dropped[:10]],
            "stored_not_published": len(set(seen) - set(published)),
            "duplicates_received": ingest.get("duplicates"),
            "dead_letters": raw.store["dead_letters"],
            "messages_published": sum(c.published for c in counters.values()),
            "messages_acknowledged": sum(c.acknowledged for c in counters.values()),
            "messages_refused": sum(c.refused for c in counters.values()),
            "reconnects": sum(c.connects - 1 for c in counters.values()),
        },  # fmt: skip
        "hq": {
            "start_s": raw.hq_start_s, "exit_code": raw.exit_code,
            "ingest_counters": ingest,
            "batches_per_transaction": (ingest.get("messages", 0) / ingest["groups"]
                                        if ingest.get("groups") else None),
            "stream": {k.removeprefix("dunewatch_api_"): v for k, v in m.items()
                       if k.startswith("dunewatch_api_sse") or k == "dunewatch_api_live_batches"},
            "stream_client": None if raw.watcher is None else {
                "events": raw.watcher.events, "snapshots": raw.watcher.snapshots,
                "track_states": raw.watcher.track_states, "error": raw.watcher.error},
            "stopped_log_line": raw.hq.stopped_line,
            "tracebacks": raw.hq.tracebacks[:5], "traceback_count": len(raw.hq.tracebacks),
            "warnings": raw.hq.warnings[:20], "warning_count": len(raw.hq.warnings),
            # Under load (the last sample while publishing) and at the end (once HQ's tick has
            # marked the silent tracks coasting).
            "fused_tracks_by_status_under_load": loaded[-1]["fused_tracks_by_status"],
            "fused_tracks_by_status": raw.store["fused_by_status"],
            "alerts_by_type": raw.store["alerts_by_type"],
        },  # fmt: skip
        "cpu_pct_of_one_core_mean": {
            name: float(np.mean([s[f"{name}_cpu_pct"] for s in live]))
            for name in ("hq", "broker", "loadgen")},
        "load_1min": {"mean": float(np.mean([s["load_1min"] for s in samples])),
                      "max": float(max(s["load_1min"] for s in samples)),
                      "end": os.getloadavg()},
        "samples": samples,
    }  # fmt: skip


def table(r: dict) -> str:
    p, o, th, lat = r["parameters"], r["offered"], r["throughput"], r["latency_ms"]
    mem, db, b, hq = r["memory"], r["database"], r["batches"], r["hq"]

    def lat_row(name: str, x: dict) -> str:
        if not x.get("n"):
            return f"{name:<34}n/a"
        return (f"{name:<34}p50 {x['p50']:8.1f} ms   p99 {x['p99']:8.1f} ms   "
                f"max {x['max']:8.1f} ms   ({x['n']} batches)")

    def fmt(value, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    picture = hq["fused_tracks_by_status_under_load"]
    ended = hq["fused_tracks_by_status"].get("ended", 0)
    cpu, load = r["cpu_pct_of_one_core_mean"], r["load_1min"]
    rows = [
        f"Soak: {p['posts']} posts x {p['drones']} drones x {p['tracks_per_drone']} tracks at "
        f"{p['rate_hz']:g} Hz into one HQ, {p['seconds']:.0f} s on loopback "
        f"(load average 1 min: mean {load['mean']:.2f}, max {load['max']:.2f}; "
        f"{r['machine']['cpu_count']} cores)",
        f"{'offered':<34}{o['track_updates_per_s']:8.0f} track updates/s  "
        f"{o['batches_per_s']:6.1f} batches/s  {o['telemetry_per_s']:6.1f} telemetry/s",
        f"{'stored at HQ, sustained':<34}{th['track_updates_per_s']:8.0f} track updates/s  "
        f"{th['batches_per_s']:6.1f} batches/s  {th['history_points_per_s']:6.0f} history "
        f"points/s  ({th['ratio_to_offered']:.3f} x offered)",
        lat_row("latency publish -> HQ receipt", lat["publish_to_hq_receipt"]),
        f"{'  p99 first / second half':<34}"
        f"{fmt(lat['publish_to_hq_receipt_first_half'].get('p99'), '.1f')} ms / "
        f"{fmt(lat['publish_to_hq_receipt_second_half'].get('p99'), '.1f')} ms",
        lat_row("latency publish -> SSE stream", lat["publish_to_sse_stream"]),
        f"{'HQ RSS':<34}{mem['hq_rss_mb_first']:.0f} MB -> {mem['hq_rss_mb_last']:.0f} MB "
        f"(max {mem['hq_rss_mb_max']:.0f}); growth, second half: "
        f"{fmt(mem['hq_rss_growth_mb_per_min_second_half'], '+.2f')} MB/min "
        f"(first half {fmt(mem['hq_rss_growth_mb_per_min_first_half'], '+.2f')})",
        f"{'database (file + WAL)':<34}{(db['db_bytes_last'] + db['wal_bytes_last']) / 1e6:.1f}"
        f" MB, {fmt(db['bytes_per_min'] and db['bytes_per_min'] / 1e6, '.2f')} MB/min, "
        f"{fmt(db['bytes_per_million_points'] and db['bytes_per_million_points'] / 1e6, '.0f')}"
        f" MB per million points; WAL max {db['wal_bytes_max'] / 1e6:.1f} MB; "
        f"{db['closed_bytes'] / 1e6:.1f} MB after close",
        f"{'batches':<34}published {b['published']}, stored {b['stored']}, dropped "
        f"{b['dropped']}, duplicates received {fmt(b['duplicates_received'], '.0f')}, "
        f"dead letters {b['dead_letters']}",
        f"{'MQTT (all messages)':<34}published {b['messages_published']}, acknowledged "
        f"{b['messages_acknowledged']}, refused {b['messages_refused']}, "
        f"reconnects {b['reconnects']}",
        f"{'HQ ingest counters':<34}"
        + ", ".join(f"{k} {v:.0f}" for k, v in hq["ingest_counters"].items())
        + f"; {fmt(hq['batches_per_transaction'], '.1f')} messages per transaction",
        f"{'fused picture under load':<34}{picture.get('confirmed', 0)} confirmed, "
        f"{picture.get('coasting', 0)} coasting fused tracks for {o['distinct_targets']} "
        f"targets ({o['node_tracks']} node tracks); {ended} ended in all; alerts "
        f"{hq['alerts_by_type'] or 'none'}",
        f"{'CPU, % of one core (mean)':<34}HQ {cpu['hq']:.0f}, broker {cpu['broker']:.0f}, "
        f"load generator {cpu['loadgen']:.0f}; load generator tick lag p99 "
        f"{fmt(lat['loadgen_tick_lag'].get('p99'), '.1f')} ms",
        f"{'HQ':<34}ready in {hq['start_s']:.1f} s, exit code {hq['exit_code']}, "
        f"tracebacks {hq['traceback_count']}, warning lines {hq['warning_count']}; "
        f"drained {fmt(th['drain_after_last_publish_s'], '.1f')} s after the last publish",
    ]  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--drones", type=int, default=4, help="per post")
    parser.add_argument("--tracks-per-drone", type=int, default=10)
    parser.add_argument("--rate-hz", type=float, default=2.0, help="batches per post per s")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="one minute, a check")
    parser.add_argument("--status-s", type=float, default=10.0, help="NodeStatus period")
    parser.add_argument("--sample-s", type=float, default=None,
                        help="sampling period (default 10 s; 5 s with --quick)")
    parser.add_argument("--spacing-m", type=float, default=4000.0, help="between posts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-stream", action="store_true", help="no SSE client")
    parser.add_argument("--dir", help="where the temporary work folder goes")
    parser.add_argument("--json", nargs="?", const=str(results.RESULTS_DIR / "soak.json"),
                        metavar="PATH",
                        help="write the results as JSON (default bench/results/soak.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.sample_s is None:
        args.sample_s = 5.0 if args.quick else 10.0
    if min(args.posts, args.drones, args.tracks_per_drone) < 1 or args.rate_hz <= 0:
        parser.error("posts, drones and tracks per drone must be at least 1, the rate positive")
    memory_gb = psutil.virtual_memory().total / 1e9
    result = {**results.header("soak", argv, "sqlite", memory_gb=memory_gb), **run(args)}
    print(table(result))
    if args.json:
        results.write(Path(args.json), result)
    return 0
