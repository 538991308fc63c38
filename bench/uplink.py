"""Uplink benchmark: `python -m bench uplink [--json] [--batches N] [--tracks N]`.

Against a private mosquitto on a free loopback port (started here with the
project's broker config), in one process:

1. Bytes per track on the wire: the JSON of a TrackBatch of N tracks, divided
   by N (the batch header shared out).
2. Outbox throughput: batches per second stored into the SQLite outbox
   (`synchronous=FULL`, every put on disk), and drained from it: published at
   QoS 1 and deleted on PUBACK, with the live lane only (no backlog rate
   bound). Reference: the same payloads published straight by paho at QoS 1,
   waiting for every PUBACK, with no outbox (ratio = ours / paho's).
3. Latency from a batch handed to the uplink to its arrival at a subscriber
   (HQ's side), p50 and p99, at 2 batches per second for `--latency-s` s
   (the edge node's rate), with the outbox on disk in the path.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import results
from edge.outbox import Outbox
from edge.uplink import Uplink, UplinkConfig
from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from wire import topics
from wire.messages import Track, TrackBatch, decode, encode

SITE, NODE = "bench", "node-1"


def a_batch(seq: int, n_tracks: int, rng) -> TrackBatch:
    tracks = [
        Track(track_id=k, time=time.time(), lat=22.84 + rng.normal(0, 0.01),
              lon=14.13 + rng.normal(0, 0.01), alt=620.0 + rng.normal(0, 1),
              position_enu=tuple(rng.normal(0, 2000, 2)), velocity_enu=tuple(rng.normal(0, 2, 2)),
              position_covariance=[[25.0, 1.5], [1.5, 20.0]],
              velocity_covariance=[[0.5, 0.01], [0.01, 0.4]], target_class="person",
              status="confirmed", quality=0.95, hits=40, sensors=["drone-1-eo"])
        for k in range(n_tracks)
    ]  # fmt: skip
    return TrackBatch(site=SITE, node=NODE, seq=seq, sent=time.time(),
                      frame_origin=(22.84, 14.13, 620.0), tracks=tracks)  # fmt: skip


class Subscriber:
    def __init__(self, port: int, password: str):
        self.received: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("hq", password)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(topics.all_nodes("tracks"), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        subscribed.wait(10)

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.received.append((time.time(), message.payload))

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def bench_outbox(workdir: Path, port: int, passwords: dict, payloads: list[bytes]) -> dict:
    outbox = Outbox(workdir / "outbox.db", max_messages=len(payloads) + 1)
    topic = topics.tracks(SITE, NODE)
    started = time.perf_counter()
    for payload in payloads:
        outbox.put(topic, payload)
    stored_per_s = len(payloads) / (time.perf_counter() - started)

    subscriber = Subscriber(port, passwords["hq"])
    config = UplinkConfig(site=SITE, node=NODE, port=port, username=f"{SITE}.{NODE}",
                          password=passwords[f"{SITE}.{NODE}"], drain_rate=1e9)  # fmt: skip
    uplink = Uplink(config, outbox)
    started = time.perf_counter()
    uplink.start()
    drained = wait_until(lambda: outbox.depth() == 0, 120)
    drained_per_s = len(payloads) / (time.perf_counter() - started)
    wait_until(lambda: subscriber.count() >= len(payloads), 30)
    arrived = subscriber.count()
    uplink.stop()
    subscriber.close()
    outbox.close()

    # Reference: paho alone, QoS 1, every PUBACK awaited, same in-flight window.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(f"{SITE}.{NODE}", passwords[f"{SITE}.{NODE}"])
    client.max_inflight_messages_set(config.max_in_flight)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)
    paho_per_s = len(payloads) / (time.perf_counter() - started)
    client.loop_stop()
    client.disconnect()
    return {
        "batches": len(payloads), "stored_per_s": stored_per_s, "drained_per_s": drained_per_s,
        "drained_all": drained, "arrived": arrived, "paho_qos1_per_s": paho_per_s,
        "drain_ratio_to_paho": drained_per_s / paho_per_s,
    }  # fmt: skip


def bench_latency(workdir: Path, port: int, passwords: dict, seconds: float, rng) -> dict:
    subscriber = Subscriber(port, passwords["hq"])
    config = UplinkConfig(site=SITE, node=NODE, port=port, username=f"{SITE}.{NODE}",
                          password=passwords[f"{SITE}.{NODE}"])  # fmt: skip
    uplink = Uplink(config, Outbox(workdir / "latency.db"))
    uplink.start()
    wait_until(lambda: uplink.counters.connected, 10)
    handed = {}
    for seq in range(int(seconds * 2)):
        batch = a_batch(seq, 20, rng)
        handed[seq] = time.time()
        uplink.send(topics.tracks(SITE, NODE), encode(batch))
        time.sleep(0.5)
    wait_until(lambda: subscriber.count() >= len(handed), 10)
    uplink.stop()
    subscriber.close()
    latencies = [(arrived - handed[decode(p).seq]) * 1e3 for arrived, p in subscriber.received]
    return {"batches": len(handed), "received": len(latencies),
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)), "max_ms": float(max(latencies))}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench uplink", description=__doc__)
    results.add_json_option(parser, "uplink")
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--tracks", type=int, default=20, help="tracks per batch")
    parser.add_argument("--latency-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    report = results.header("uplink", argv)
    sizes = {n: len(encode(a_batch(123456, n, rng))) for n in (1, 20, 200)}
    report["bytes_per_track"] = {str(n): size / n for n, size in sizes.items()}
    payloads = [encode(a_batch(seq, args.tracks, rng)) for seq in range(args.batches)]
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        port = free_tcp_port()
        passwords = write_broker_config(workdir / "broker", [(SITE, NODE)], port=port,
                                        bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
        broker = BrokerProcess(workdir / "broker" / "mosquitto.conf", port).start()
        try:
            print("outbox throughput ...", file=sys.stderr)
            report["outbox"] = bench_outbox(workdir, port, passwords, payloads)
            report["outbox"]["tracks_per_batch"] = args.tracks
            report["outbox"]["payload_bytes"] = len(payloads[0])
            print("latency ...", file=sys.stderr)
            report["latency"] = bench_latency(workdir, port, passwords, args.latency_s, rng)
        finally:
            broker.stop()
    results.publish(format_report(report), report, "uplink" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    o, lat = report["outbox"], report["latency"]
    per_track = ", ".join(f"{v:.0f} B at {k} tracks/batch"
                          for k, v in report["bytes_per_track"].items())  # fmt: skip
    return "\n".join([
        f"bytes per track on the wire (JSON): {per_track}",
        f"outbox, {o['batches']} batches of {o['tracks_per_batch']} tracks "
        f"({o['payload_bytes']} B each):",
        f"  stored (on disk, synchronous=FULL)  {o['stored_per_s']:>9,.0f} batches/s",
        f"  drained (QoS 1, deleted on PUBACK)  {o['drained_per_s']:>9,.0f} batches/s "
        f"({o['drain_ratio_to_paho']:.2f}x paho alone; {o['arrived']} arrived)",
        f"  paho alone, QoS 1, no outbox        {o['paho_qos1_per_s']:>9,.0f} batches/s",
        f"latency, uplink to subscriber, {lat['received']}/{lat['batches']} batches at 2 Hz: "
        f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms",
    ])  # fmt: skip
