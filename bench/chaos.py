"""`python -m bench chaos [--minutes M] [--posts N] [--rate HZ] [--broker-kills K]
[--hq-kills K] [--node-kills K] [--json]`: nothing lost, nothing stored twice, while the
delivery path is broken again and again.

Posts stream TrackBatches at `--rate` through the node's own uplink and outbox
(bench/stream_post.py) into `python -m hq run` on SQLite, through mosquitto with the
project's config (bench/chaos_rig.py). Spread evenly over `--minutes`, in a shuffled
order fixed by `--seed`: kill -9 of the broker (every other one with its persistence
file deleted, so it restarts empty and HQ's session is gone), kill -9 of HQ, kill -9 of
one post; each is started again after `--down` seconds (a post at once). Then the posts
stop making batches and run on until HQ has confirmed all they hold.

Reported per post and in total: batches made (the outbox's numbers), stored exactly once
in HQ's store (distinct (node, seq) rows), missing, and counted twice (the store's batch
counter beyond its distinct seqs). The issue's target: 0 missing, 0 counted twice over
10 minutes with 20 broker, 20 HQ and 10 node kills (the defaults).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench import results
from bench.chaos_rig import DeliveryRig


def schedule(args) -> list[tuple[str, bool]]:
    """The faults in order: ("broker", keep_persistence) / ("hq", _) / ("post", _)."""
    faults = [("broker", k % 2 == 0) for k in range(args.broker_kills)]
    faults += [("hq", False)] * args.hq_kills + [("post", False)] * args.node_kills
    random.Random(args.seed).shuffle(faults)
    return faults


def inject(rig: DeliveryRig, fault: str, keep: bool, down_s: float, rng: random.Random) -> str:
    if fault == "broker":
        rig.kill_broker(keep_persistence=keep)
        time.sleep(down_s)
        rig.broker.start()
        return "broker kill -9, " + ("persistence kept" if keep else "restarted empty")
    if fault == "hq":
        rig.hq.kill()
        time.sleep(down_s)
        rig.start_hq()
        return "HQ kill -9"
    name = rng.choice(rig.names)
    rig.posts[name].kill()
    rig.start_post(name)
    return f"{name} kill -9"


def run(args, folder: Path) -> dict:
    rig = DeliveryRig(folder, posts=args.posts, rate_hz=args.rate,
                      confirm_timeout_s=args.confirm_timeout)  # fmt: skip
    faults = schedule(args)
    rng = random.Random(args.seed)
    duration_s = args.minutes * 60.0
    timeline = []
    try:
        rig.start()
        started = time.monotonic()
        for k, (fault, keep) in enumerate(faults):
            due = started + duration_s * (k + 1) / (len(faults) + 1)
            time.sleep(max(0.0, due - time.monotonic()))
            what = inject(rig, fault, keep, args.down, rng)
            timeline.append({"at_s": round(time.monotonic() - started, 1), "fault": what})
            print(f"{timeline[-1]['at_s']:7.1f} s  {what}", flush=True)
        time.sleep(max(0.0, started + duration_s - time.monotonic()))
        chaos_s = time.monotonic() - started
        left = rig.drain_posts(timeout_s=args.drain_timeout)
        drained_s = time.monotonic() - started - chaos_s
        tallies = rig.tally()
    finally:
        rig.stop()
    resend_rounds = sum((folder / f"{n}.log").read_text().count("stored messages again")
                        for n in rig.names)  # fmt: skip
    posts = [{**t.__dict__, "left_in_outbox": left[t.node_key.split("/")[1]]} for t in tallies]
    return {
        "settings": {"minutes": args.minutes, "posts": args.posts, "rate_hz": args.rate,
                     "broker_kills": args.broker_kills, "hq_kills": args.hq_kills,
                     "node_kills": args.node_kills, "down_s": args.down,
                     "confirm_timeout_s": args.confirm_timeout, "seed": args.seed},
        "chaos_s": round(chaos_s, 1), "drain_s": round(drained_s, 1), "timeline": timeline,
        "posts": posts,
        "produced": sum(p["produced"] for p in posts),
        "stored_once": sum(p["stored"] for p in posts),
        "missing": sum(p["missing"] for p in posts),
        "counted_twice": sum(p["counted_twice"] for p in posts),
        "resend_rounds": resend_rounds,
    }  # fmt: skip


def table(figures: dict) -> str:
    s = figures["settings"]
    lines = [
        f"chaos: {s['posts']} posts at {s['rate_hz']:g} Hz for {figures['chaos_s']:.0f} s; "
        f"kill -9: broker {s['broker_kills']} (every other one restarted empty), "
        f"HQ {s['hq_kills']}, a post {s['node_kills']}; drained in {figures['drain_s']:.0f} s",
        f"{'post':<16}{'made':>9}{'stored once':>13}{'missing':>9}{'twice':>7}{'left':>6}",
    ]
    for p in figures["posts"]:
        lines.append(
            f"{p['node_key']:<16}{p['produced']:>9,}{p['stored']:>13,}"
            f"{p['missing']:>9}{p['counted_twice']:>7}{p['left_in_outbox']:>6}"
        )
    lines.append(f"{'total':<16}{figures['produced']:>9,}{figures['stored_once']:>13,}"
                 f"{figures['missing']:>9}{figures['counted_twice']:>7}")  # fmt: skip
    lines.append(
        f"resend rounds (a post sent its unconfirmed batches again): {figures['resend_rounds']}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--posts", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="batches per second a post")
    parser.add_argument("--broker-kills", type=int, default=20)
    parser.add_argument("--hq-kills", type=int, default=20)
    parser.add_argument("--node-kills", type=int, default=10)
    parser.add_argument("--down", type=float, default=2.0, help="s a killed part stays down")
    parser.add_argument("--confirm-timeout", type=float, default=5.0, help="the posts', s")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="s")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--folder", help="where logs and the database go (default: a temp dir)")
    results.add_json_option(parser, "chaos")
    args = parser.parse_args(argv)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="dunewatch-chaos-"))
    figures = {**results.header("chaos", argv, "sqlite"), **run(args, folder)}
    results.publish(table(figures), figures, "chaos" if args.json else None)
    print(f"logs and the database in {folder}")
    return 0 if figures["missing"] == 0 and figures["counted_twice"] == 0 else 1
