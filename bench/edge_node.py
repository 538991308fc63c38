"""Edge node benchmark: `python -m bench edge_node [--json] [--mode eo|thermal] [--seconds S]
[--fps F] [--thermal-detector hot_spots|learned]`.

Runs the node as it runs at a post (`python -m edge run`) on the small
scenario played live: its drone's telemetry replayed over UDP at the wall
clock, its gimbal camera rendered at 1280x720 and served as MJPEG, tracks out
through a private mosquitto on loopback to a subscriber that stands for HQ.
After the node has warmed up and its tracks have started, for `--seconds`:

1. Latency from a frame's time (the newest track time in a batch: the
   exposure of the last frame the tracker used) to the batch's arrival at
   the subscriber, p50/p99; it holds the wait for the next publish tick
   (2 Hz), so the same from the batch's `sent` time is given beside it.
   Reference, same broker, same run: the same batches' bytes published
   straight by paho (QoS 1) to the same subscriber.
2. The node process's CPU (cores: CPU seconds per wall second, all threads)
   and resident memory (peak), read with psutil; the renderer and replay run
   in their own processes and are not counted.
"""

from __future__ import annotations

import argparse
import getpass
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from bench import results
from hq.broker import BrokerProcess, free_tcp_port, username, write_broker_config
from sim_hw.live import LiveCamera, LiveScenario
from sim_hw.scenario import load_config
from stack.config_files import write_config
from stack.deployment import node_config
from stack.process import Service, free_udp_port
from wire import topics
from wire.messages import TrackBatch, decode

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "configs" / "scenarios" / "small.toml"
SCENARIO_CONFIG = load_config(SCENARIO)
SITE, POST = SCENARIO_CONFIG.name, SCENARIO_CONFIG.posts[0]
ACCOUNT = username(SITE, POST.name)  # the node's MQTT account
SKIP_S = 50.0  # scenario time playing at the start: the walkers are setting off


class Subscriber:
    """HQ's side: every TrackBatch with its arrival time."""

    def __init__(self, port: int, password: str, topic: str):
        self.arrivals: list[tuple[float, str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("hq", password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.arrivals.append((time.time(), message.topic, bytes(message.payload)))

    def batches(self) -> list[tuple[float, TrackBatch]]:
        with self.lock:
            arrivals = list(self.arrivals)
        return [(t, b) for t, topic, payload in arrivals
                if topic.endswith("/tracks") and isinstance(b := decode(payload), TrackBatch)]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def sample_process(process: psutil.Process, seconds: float) -> dict:
    """CPU cores and resident memory of `process` over `seconds`."""
    cpu0, wall0 = sum(process.cpu_times()[:2]), time.monotonic()
    peak_rss = 0
    deadline = wall0 + seconds
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, process.memory_info().rss)
        time.sleep(0.5)
    cpu = sum(process.cpu_times()[:2]) - cpu0
    return {"cpu_cores": cpu / (time.monotonic() - wall0), "peak_rss_mb": peak_rss / 2**20}


def percentiles_ms(values) -> dict:
    values = np.asarray(values) * 1000.0
    if not len(values):
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    return {"p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)), "n": int(len(values))}  # fmt: skip


def paho_reference(port: int, password: str, payloads: list[bytes], hq: Subscriber) -> dict:
    """The same bytes published straight by paho, QoS 1, at 2 per second."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(ACCOUNT, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    # Under the node's own root (its ACL grant), on a channel no one else uses.
    topic = topics.node_root(SITE, POST.name).removesuffix("#") + "reference"
    hq.client.subscribe(topic, qos=1)
    time.sleep(0.5)
    sent = []
    for payload in payloads:
        sent.append(time.time())
        client.publish(topic, payload, qos=1).wait_for_publish()
        time.sleep(0.5)
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()
    with hq.lock:
        arrived = [t for t, arrival_topic, _ in hq.arrivals if arrival_topic == topic]
    return percentiles_ms(np.array(arrived[:len(sent)]) - np.array(sent[:len(arrived)]))


def run(mode: str, seconds: float, fps: float = 25.0,
        thermal_detector: str = "hot_spots") -> dict:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker_port = free_tcp_port()
        passwords = write_broker_config(folder / "broker", [(SITE, POST.name)],
                                        port=broker_port, bind="127.0.0.1",
                                        run_as=getpass.getuser())  # fmt: skip
        broker = BrokerProcess(folder / "broker" / "mosquitto.conf", broker_port).start()
        mavlink_port = free_udp_port()
        camera = LiveCamera(sysid=1, port=free_tcp_port(), mode=mode, width=1280, height=720,
                            fps=fps, lighting="night" if mode == "thermal" else "day")
        hq = Subscriber(broker_port, passwords["hq"], topics.tracks(SITE, POST.name))
        config = write_config(folder / "node.toml",
                              node_config(SITE, POST, broker_port, folder / "outbox.db",
                                          [f"udpin:127.0.0.1:{mavlink_port}"], [camera],
                                          thermal_detector=thermal_detector),
                              "the node under load, written by bench/edge_node.py")
        node = Service("node", ["edge", "run", "--config", str(config)],
                       {"NODE_MQTT_PASSWORD": passwords[ACCOUNT]})
        live = None
        try:
            node.start().wait_for_line("node running")
            live = LiveScenario(SCENARIO, folder / "sim", skip_s=SKIP_S,
                                mavlink={1: f"udpout:127.0.0.1:{mavlink_port}"},
                                cameras=[camera]).start()  # fmt: skip
            warm_until = time.time() + 15.0
            time.sleep(15.0)
            usage = sample_process(psutil.Process(node.process.pid), seconds)
            measured = [(t, b) for t, b in hq.batches() if b.sent >= warm_until]
            with_tracks = [(t, b) for t, b in measured if b.tracks]
            frame_latency = [t - max(tr.time for tr in b.tracks) for t, b in with_tracks]
            sent_latency = [t - b.sent for t, b in measured]
            payloads = [p for _, topic, p in hq.arrivals if topic.endswith("/tracks")][-40:]
            reference = paho_reference(broker_port, passwords[ACCOUNT], payloads, hq)
            failed = live.failed()
        finally:
            if live is not None:
                live.stop()
            node.stop()
            hq.close()
            broker.kill()
    if failed:
        raise RuntimeError(f"simulator parts failed: {failed}")
    return {
        "mode": mode, "resolution": "1280x720", "fps": camera.fps, "seconds": seconds,
        "thermal_detector": thermal_detector if mode == "thermal" else None,
        "batches": len(measured), "batches_with_tracks": len(with_tracks),
        "frame_to_subscriber": percentiles_ms(frame_latency),
        "sent_to_subscriber": percentiles_ms(sent_latency),
        "paho_reference": reference, **usage,
    }  # fmt: skip


def table(cameras: list[dict]) -> str:
    rows = ["| camera | frame→HQ p50/p99 ms | sent→HQ p50/p99 ms | bare paho p50/p99 ms "
            "| node CPU cores | node peak RSS MB |", "|---|---|---|---|---|---|"]
    for r in cameras:
        f, s, p = r["frame_to_subscriber"], r["sent_to_subscriber"], r["paho_reference"]
        rows.append(f"| {r['mode']} {r['resolution']}@{r['fps']:g} | {_pair(f)} | {_pair(s)} "
                    f"| {_pair(p)} | {r['cpu_cores']:.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


def _pair(stats: dict) -> str:
    if stats["p50_ms"] is None:
        return "n/a"
    return f"{stats['p50_ms']:.1f} / {stats['p99_ms']:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench edge_node",
                                     description=__doc__.splitlines()[0])
    results.add_json_option(parser, "edge_node")
    parser.add_argument("--mode", choices=["eo", "thermal", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=25.0, help="the camera's frame rate")
    parser.add_argument("--thermal-detector", choices=["hot_spots", "learned"],
                        default="hot_spots", help="the node's thermal detector")
    args = parser.parse_args(argv)
    modes = ["eo", "thermal"] if args.mode == "both" else [args.mode]
    cameras = [run(mode, args.seconds, args.fps, args.thermal_detector) for mode in modes]
    report = {**results.header("edge_node", argv), "cameras": cameras}
    results.publish(table(cameras), report, "edge_node" if args.json else None)
    return 0
