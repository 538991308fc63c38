"""`python -m bench abuse [--seconds S] [--posts N] [--rate HZ] [--json]`: how much one
hostile post slows the others' delivery to HQ's store.

The delivery rig of the chaos benchmark (bench/chaos_rig.py: mosquitto with the
project's config and ACL, `python -m hq run` on SQLite) with `--posts` honest posts and
one more account. Each honest post publishes numbered TrackBatches at `--rate` (QoS 1,
with its own account), noting when it published each. A reader polls HQ's store every
`POLL_S` for the batches it holds (`seen_batches`, written in the same transaction as the
tracks): a batch's latency is from its publication to the first poll that finds it, so the
figures carry up to `POLL_S` of resolution.

Two phases of `--seconds` each, on the same HQ: quiet, then with the last account abusing
the path as fast as one client can, in turn: poison batches (a track id past int64, valid
JSON), a flood of valid batches far above HQ's per-post rate, payloads past the broker's
size limit, junk bytes and non-finite numbers, a track stamped far in the future, retained
junk, and connections taking HQ's client id or another post's. Reported per phase: the
honest posts' publish-to-commit p50/p99 and max, batches missing at the end; the issue's
target is the abused p50 and p99 within 2x of the quiet ones, nothing missing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import results
from bench.chaos_rig import SITE, DeliveryRig
from bench.stream_post import walkers
from hq.broker import username
from wire import topics
from wire.geo import EnuFrame
from wire.messages import TrackBatch, encode

POLL_S = 0.05  # the store reader's period: the latency's resolution
RECEIPT_TO_COMMIT_S = 30.0  # the reader looks this far back from the newest receipt
SETTLE_S = 10.0  # after a phase, for the last batches to be committed
FRAME = EnuFrame(22.84, 14.13, 620.0)


class HonestPost:
    """Numbered batches at a steady rate, each publication's time noted by seq."""

    def __init__(self, name: str, password: str, port: int, rate_hz: float):
        self.name, self.rate_hz = name, rate_hz
        self.published: dict[int, float] = {}
        self.seq = 0
        self.client = _client(f"{SITE}-{name}", username(SITE, name), password, port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # one per phase

    def start(self) -> HonestPost:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"post-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        topic = topics.tracks(SITE, self.name)
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.seq += 1
            now = time.time()
            payload = encode(TrackBatch(site=SITE, node=self.name, seq=self.seq, sent=now,
                                        frame_origin=(FRAME.lat, FRAME.lon, FRAME.alt),
                                        tracks=walkers(FRAME, 3, now)))  # fmt: skip
            self.client.publish(topic, payload, qos=1)
            self.published[self.seq] = now
            next_at += 1.0 / self.rate_hz
            self._stop.wait(max(0.0, next_at - time.monotonic()))


class StoreReader:
    """When each (node, seq) first shows in HQ's store, polled every POLL_S."""

    def __init__(self, database: Path):
        self.database = database
        self.first_seen: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-reader", daemon=True)

    def start(self) -> StoreReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def stored(self) -> set[tuple[str, int]]:
        """Every (node, seq) the store holds now, however late it came."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5.0) as db:
            return set(db.execute("SELECT node_key, seq FROM seen_batches").fetchall())

    def _run(self) -> None:
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5.0)
        newest = 0.0  # HQ's receipt time of the newest batch found
        while not self._stop.wait(POLL_S):
            try:  # a batch is committed at most RECEIPT_TO_COMMIT_S after HQ received it
                rows = db.execute("SELECT node_key, seq, received FROM seen_batches "
                                  "WHERE received >= ?", [newest - RECEIPT_TO_COMMIT_S]
                                  ).fetchall()  # fmt: skip
            except sqlite3.OperationalError:  # busy for a moment: the next poll finds it
                continue
            now = time.time()
            for node_key, seq, received in rows:
                self.first_seen.setdefault((node_key, seq), now)
                newest = max(newest, received)
        db.close()


class Abuser:
    """The last account, doing every kind of harm one client can, in turn, flat out."""

    def __init__(self, name: str, password: str, port: int, victim: str):
        self.name, self.password, self.port, self.victim = name, password, port, victim
        self.sent: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abuser", daemon=True)

    def start(self) -> Abuser:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        client = _client(f"{SITE}-{self.name}", username(SITE, self.name), self.password,
                         self.port)  # fmt: skip
        topic = topics.tracks(SITE, self.name)
        seq = 0
        while not self._stop.is_set():
            for kind, payloads in self._rounds():
                for payload in payloads(seq):
                    seq += 1
                    client.publish(topic, payload, qos=1, retain=kind == "retained_junk")
                    self.sent[kind] = self.sent.get(kind, 0) + 1
                if kind == "takeover":
                    self._take_over()
            self._stop.wait(0.05)
        client.loop_stop()
        client.disconnect()

    def _rounds(self):
        def batch(seq: int, t: float | None = None) -> dict:
            now = time.time()
            return json.loads(encode(TrackBatch(
                site=SITE, node=self.name, seq=seq, sent=now,
                frame_origin=(FRAME.lat, FRAME.lon, FRAME.alt),
                tracks=walkers(FRAME, 3, now if t is None else t))))  # fmt: skip

        def poison(seq):
            for k in range(50):
                message = batch(seq + k)
                message["tracks"][0]["track_id"] = 2**63
                yield json.dumps(message).encode()

        def flood(seq):
            for k in range(2000):
                yield json.dumps(batch(seq + k)).encode()

        def oversize(seq):
            yield b"x" * (2 * 1024 * 1024)

        def junk(seq):
            yield b"\x00\xff not json"
            yield json.dumps(batch(seq)).replace('"lat": ', '"lat": NaN, "x": ', 1).encode()

        def future(seq):
            message = batch(seq)
            message["tracks"][0]["time"] = 1e308
            yield json.dumps(message).encode()

        def retained_junk(seq):
            yield b"retained junk"

        return [("poison", poison), ("flood", flood), ("oversize", oversize), ("junk", junk),
                ("future", future), ("retained_junk", retained_junk), ("takeover", lambda _: [])]

    def _take_over(self) -> None:
        """Connect with HQ's client id, then with another post's, with this account."""
        for client_id in ("hq-ingest", f"{SITE}-{self.victim}", username(SITE, self.victim)):
            try:
                thief = _client(client_id, username(SITE, self.name), self.password, self.port,
                                wait=False)  # fmt: skip
            except OSError:
                continue
            time.sleep(0.2)
            thief.loop_stop()
            thief.disconnect()
            self.sent["takeover"] = self.sent.get("takeover", 0) + 1


def _client(client_id: str, user: str, password: str, port: int,
            wait: bool = True) -> mqtt.Client:  # fmt: skip
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.username_pw_set(user, password)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda c, u, flags, reason, props: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if wait and not connected.wait(10):
        raise RuntimeError(f"{client_id} did not connect to the broker")
    return client


def phase(posts: list[HonestPost], reader: StoreReader, seconds: float,
          abuser: Abuser | None) -> dict:  # fmt: skip
    first = {p.name: p.seq + 1 for p in posts}
    for post in posts:
        post.start()
    if abuser is not None:
        abuser.start()
    time.sleep(seconds)
    if abuser is not None:
        abuser.stop()
    for post in posts:
        post.stop()
    time.sleep(SETTLE_S)
    stored = reader.stored()
    latencies, missing, unseen = [], 0, 0
    for post in posts:
        for seq in range(first[post.name], post.seq + 1):
            key = (f"{SITE}/{post.name}", seq)
            if key not in stored:
                missing += 1
            elif key not in reader.first_seen:  # committed past the reader's look-back
                unseen += 1
            else:
                latencies.append(reader.first_seen[key] - post.published[seq])
    ms = 1000.0 * np.array(latencies)
    return {"batches": len(latencies) + missing + unseen, "missing": missing,
            "latency_unmeasured": unseen,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1),
            "abuse": dict(abuser.sent) if abuser is not None else {}}  # fmt: skip


def run(args, folder: Path) -> dict:
    rig = DeliveryRig(folder, posts=args.posts + 1, rate_hz=args.rate)
    honest, hostile = rig.names[:-1], rig.names[-1]
    password = {name: rig.passwords[username(SITE, name)] for name in rig.names}
    try:
        rig.broker.start()
        rig.start_hq()
        reader = StoreReader(rig.database).start()
        posts = [HonestPost(n, password[n], rig.port, args.rate) for n in honest]
        quiet = phase(posts, reader, args.seconds, None)
        print(f"quiet: {quiet}", flush=True)
        abuser = Abuser(hostile, password[hostile], rig.port, victim=honest[0])
        abused = phase(posts, reader, args.seconds, abuser)
        print(f"abused: {abused}", flush=True)
        reader.stop()
        hq_alive = rig.hq.process.poll() is None
    finally:
        rig.stop()
    return {"settings": {"seconds": args.seconds, "posts": args.posts, "rate_hz": args.rate,
                         "poll_s": POLL_S},
            "quiet": quiet, "abused": abused, "hq_survived": hq_alive,
            "p50_ratio": round(abused["p50_ms"] / quiet["p50_ms"], 2),
            "p99_ratio": round(abused["p99_ms"] / quiet["p99_ms"], 2)}  # fmt: skip


def table(figures: dict) -> str:
    s = figures["settings"]
    lines = [f"abuse: {s['posts']} honest posts at {s['rate_hz']:g} Hz, {s['seconds']:g} s quiet "
             f"then {s['seconds']:g} s with one hostile post; publish to commit, polled every "
             f"{1000 * s['poll_s']:.0f} ms",
             f"{'phase':<8}{'batches':>9}{'missing':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
    for name in ("quiet", "abused"):
        p = figures[name]
        lines.append(f"{name:<8}{p['batches']:>9,}{p['missing']:>9}{p['p50_ms']:>9.1f}"
                     f"{p['p99_ms']:>9.1f}{p['max_ms']:>9.1f}")  # fmt: skip
    lines.append(f"abused / quiet: p50 {figures['p50_ratio']:.2f}x, p99 {figures['p99_ratio']:.2f}x"
                 f"; HQ still running: {figures['hq_survived']}")
    lines.append("hostile messages sent: " + ", ".join(
        f"{k} {v:,}" for k, v in figures["abused"]["abuse"].items()))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench abuse",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase")
    parser.add_argument("--posts", type=int, default=3, help="honest posts")
    parser.add_argument("--rate", type=float, default=20.0, help="batches per second a post")
    parser.add_argument("--folder", help="where logs and the database go (default: a temp dir)")
    results.add_json_option(parser, "abuse")
    args = parser.parse_args(argv)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="dunewatch-abuse-"))
    figures = {**results.header("abuse", argv, "sqlite"), **run(args, folder)}
    results.publish(table(figures), figures, "abuse" if args.json else None)
    print(f"logs and the database in {folder}")
    ok = figures["abused"]["missing"] == 0 and figures["hq_survived"]
    return 0 if ok else 1
