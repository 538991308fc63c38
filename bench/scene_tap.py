"""Each node's own picture, as it sent it: a listener on the broker beside HQ.

HQ's store keeps every fused track's history but only each node track's newest
state, so a node's picture over time is read off the wire: a second MQTT
client with HQ's read-only account subscribes to every node's tracks (QoS 0,
its own session, so HQ's delivery and acknowledgements are untouched) and keeps
each batch. Only confirmed and coasting tracks are kept: those HQ fuses.

Also here: how many frames each node processed per camera per second, from the
counters the node logs when it stops.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.scene_score import Picture
from wire import topics
from wire.geo import EnuFrame
from wire.messages import TrackBatch, decode, encode

FUSED_STATUSES = ("confirmed", "coasting")


class NodeTap:
    """Every TrackBatch on the broker, kept per node ("site/node")."""

    def __init__(self, port: int, password: str, username: str = "hq"):
        self.batches: dict[str, list[TrackBatch]] = defaultdict(list)
        self.undecodable = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="scene-suite-tap",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self._port = port

    def start(self, timeout_s: float = 10.0) -> NodeTap:
        self.client.connect("127.0.0.1", self._port, keepalive=15)
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise TimeoutError("the tap's subscription was not granted")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(topics.all_nodes("tracks"), qos=0)

    def _on_message(self, client, userdata, message) -> None:
        try:
            batch = decode(message.payload, TrackBatch)
        except ValueError:
            with self._lock:
                self.undecodable += 1
            return
        with self._lock:
            self.batches[f"{batch.site}/{batch.node}"].append(batch)

    def save(self, path: Path) -> Path:
        """Every batch kept, one JSON line each, so that a run can be scored again."""
        with self._lock:
            batches = [b for node in sorted(self.batches) for b in self.batches[node]]
        Path(path).write_text("".join(encode(b).decode() + "\n" for b in batches))
        return Path(path)


def read_pictures(path: Path, origin: EnuFrame) -> dict[str, Picture]:
    """Each node's picture from a saved tap, in the origin's ENU frame (through each
    track's WGS84)."""
    batches: dict[str, list[TrackBatch]] = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        batch = decode(line, TrackBatch)
        batches[f"{batch.site}/{batch.node}"].append(batch)
    return {node: node_picture(b, origin) for node, b in batches.items()}


def node_picture(batches: list[TrackBatch], origin: EnuFrame) -> Picture:
    rows: dict[int, list[tuple]] = defaultdict(list)
    classes: dict[int, list[str]] = defaultdict(list)
    for batch in sorted(batches, key=lambda b: b.seq):
        for track in batch.tracks:
            if str(track.status) not in FUSED_STATUSES:
                continue
            e, n, _ = origin.from_geodetic(track.lat, track.lon, origin.alt)
            rows[track.track_id].append((track.time, float(e), float(n), track.count))
            classes[track.track_id].append(str(track.target_class))
    histories, labels = {}, {}
    for track_id, points in rows.items():
        order = np.argsort([p[0] for p in points], kind="stable")
        histories[track_id] = np.array(points, dtype=float)[order]
        labels[track_id] = [classes[track_id][k] for k in order]
    return Picture(histories, labels)


_STOPPED = re.compile(r"node stopped counters=NodeCounters\(([^)]*)\)")
# Counted in `frames` but not processed: no pose, out of order, decimated on purpose.
_SKIPPED = ("frames_without_pose", "frames_out_of_order", "frames_decimated")


def frames_taken(log: Path) -> int | None:
    """The frames a node's loop processed, from the counters it logs on stopping: those it
    took, less those it skipped (the counters it has of `_SKIPPED`)."""
    found = _STOPPED.findall(Path(log).read_text(errors="replace")) if Path(log).exists() else []
    if not found:
        return None
    counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[-1])}
    if "frames" not in counters:
        return None
    return counters["frames"] - sum(counters.get(name, 0) for name in _SKIPPED)
