"""A border post that streams numbered TrackBatches at a fixed rate through the node's own
uplink and outbox (edge/uplink.py, edge/outbox.py, built from an edge config by
`edge.run.build_uplink`), without cameras or a tracker: the delivery path of a
real node, for the chaos benchmark and the delivery tests.

    python -m bench.stream_post --config node.toml --rate 20

Each batch holds `--tracks` walkers a few hundred metres from the post. Runs until
SIGTERM or SIGINT, then flushes as a node does and says offline. The outbox file
keeps the numbers handed out (`produced`), so a test or the benchmark reads what
was made from it even after a kill -9. With `--drain` it makes nothing and exits
once HQ has confirmed everything in the outbox (or after `--drain-timeout`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path

from edge.config import load_config
from edge.run import build_uplink
from wire import topics
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, encode


def walkers(frame: EnuFrame, count: int, t: float) -> list[Track]:
    tracks = []
    for k in range(count):
        east, north = 300.0 + 40.0 * k + 1.2 * (t % 600.0), 200.0 - 30.0 * k
        lat, lon, alt = frame.to_geodetic(east, north, 0.0)
        tracks.append(Track(
            track_id=k + 1, time=t, lat=float(lat), lon=float(lon), alt=float(alt),
            position_enu=(east, north), velocity_enu=(1.2, 0.0),
            position_covariance=[[4.0, 0.0], [0.0, 4.0]],
            velocity_covariance=[[0.25, 0.0], [0.0, 0.25]],
            target_class="person", status="confirmed", quality=0.95, hits=10,
        ))  # fmt: skip
    return tracks


def produced(outbox: Path) -> tuple[int, int]:
    """(first seq, last seq handed out) of an outbox file: every batch the post made."""
    with sqlite3.connect(outbox) as db:
        values = dict(db.execute("SELECT name, value FROM counters"))
    return values["first_seq"], values["seq"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_post", description=__doc__)
    parser.add_argument("--config", required=True, help="an edge node's TOML")
    parser.add_argument("--rate", type=float, default=20.0, help="batches per second")
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--drain", action="store_true", help="only deliver what is stored")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="s")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    frame = EnuFrame(config.post.lat, config.post.lon, config.post.alt)
    uplink = build_uplink(config)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    uplink.start()
    if args.drain:
        print(f"post draining depth={uplink.outbox.depth()}", flush=True)
        deadline = time.monotonic() + args.drain_timeout
        while uplink.outbox.depth() and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(0.2)
        uplink.stop()
        print(f"post drained left={uplink.outbox.depth()} counters={uplink.counters}", flush=True)
        return 0 if uplink.outbox.depth() == 0 else 1
    topic = topics.tracks(config.site, config.node)
    print(f"post streaming site={config.site} node={config.node} rate={args.rate}", flush=True)
    period = 1.0 / args.rate
    next_at = time.monotonic()
    while not stop.is_set():
        now = time.time()
        tracks = walkers(frame, args.tracks, now)
        uplink.send_numbered(topic, lambda seq, now=now, tracks=tracks: encode(TrackBatch(
            site=config.site, node=config.node, seq=seq, sent=now,
            frame_origin=(frame.lat, frame.lon, frame.alt), tracks=tracks)))  # fmt: skip
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))
    uplink.stop()
    print(f"post stopped counters={uplink.counters}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
