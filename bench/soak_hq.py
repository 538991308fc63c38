"""HQ as the soak runs it: its config, the real process, its token, metrics and
live stream (see bench/soak.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx

from bench.soak_posts import ORIGIN, Layout
from hq.config import ApiSection, BrokerSection, HqConfig, PlaceSection
from stack.config_files import write_config
from stack.process import Service
from wire.geo import EnuFrame
from wire.secrets import SecretRef

ROOT = Path(__file__).resolve().parents[1]
BORDER_NORTH_M = 6000.0  # far north of every watched patch: no crossings, no alert flood


# --- HQ, as it runs in the field --------------------------------------------------------------

def write_hq_config(folder: Path, layout: Layout, broker_port: int, api_port: int) -> Path:
    """A minimal HQ config as a directorate would write it (stack/deployment.py's shape)."""
    frame = EnuFrame(*ORIGIN)
    west, east = -layout.spacing_m, layout.post_east(layout.posts - 1) + layout.spacing_m
    border = [frame.to_geodetic(e, BORDER_NORTH_M, 0.0)[:2] for e in (west, east)]
    places = []
    for post in range(layout.posts):
        lat, lon, _ = frame.to_geodetic(layout.post_east(post), 0.0, 0.0)
        places.append(PlaceSection(name=f"post {post + 1}", lat=lat, lon=lon, radius_m=1500.0))
    config = HqConfig(
        origin=ORIGIN, border=border, home=ORIGIN[:2], store=str(folder / "hq.db"), places=places,
        broker=BrokerSection(host="127.0.0.1", port=broker_port, username="hq",
                             password=SecretRef(env="DUNEWATCH_HQ_MQTT_PASSWORD")),
        api=ApiSection(host="127.0.0.1", port=api_port),
    )  # fmt: skip
    return write_config(folder / "hq.toml", config, "HQ for the soak, written by bench/soak.py")


# What HQ's log says when something was refused or lost (its format carries no level).
WARNING_WORDS = ("dead letter", "not committed", "not ingested", "failed ", "tick failed",
                 "refused", "disconnected", "Exception", "Error")


class HqProcess(Service):
    """`python -m hq run` with its output kept in a log; notes the tracebacks, the lines
    that say something was refused, and the counters HQ logs when it stops."""

    def __init__(self, config: Path, password: str, log_path: Path):
        super().__init__("hq", ["hq", "run", "--config", str(config)],
                         {"DUNEWATCH_HQ_MQTT_PASSWORD": password}, log_path,
                         on_line=self._note)  # fmt: skip
        self.stopped_line: str | None = None
        self.tracebacks: list[str] = []  # the first lines of each
        self.warnings: list[str] = []  # lines that say something was refused or failed
        self._trace: list[str] | None = None

    def _note(self, line: str) -> None:
        if "HQ stopped counters=" in line:
            self.stopped_line = line.split("HQ stopped ", 1)[1].strip()
        if line.startswith("Traceback"):
            self._trace = []
            self.tracebacks.append("")
        if self._trace is not None and len(self._trace) < 40:
            self._trace.append(line.rstrip())
            self.tracebacks[-1] = "\n".join(self._trace)
        if any(w in line for w in WARNING_WORDS):
            self.warnings.append(line.rstrip())


def create_token(api_db: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "hq", "token", "create", "--name", "soak",
                           "--role", "viewer", "--db", str(api_db)], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip().splitlines()[0]


def read_metrics(url: str, token: str) -> dict[str, float]:
    """HQ's Prometheus counters and gauges named dunewatch_*, by name."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).text  # fmt: skip
    values = {}
    for line in text.splitlines():
        if line.startswith("dunewatch_") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name.removesuffix("_total")] = float(value)
    return values


class StreamWatcher(threading.Thread):
    """An operator's live stream (SSE): the time from a batch's publish to the first
    appearance of a fused state it produced. A fused track carries its state time and its
    sources ('site/node:track_id'); (node, state time) names the batch, since every batch
    of a node has its own state time."""

    def __init__(self, url: str, token: str, sent: dict[tuple[str, float], float]):
        super().__init__(daemon=True, name="soak-stream")
        self.url, self.token, self.sent = url, token, sent
        self.latency: dict[tuple[str, float], float] = {}  # first appearance only
        self.events = self.track_states = self.snapshots = 0
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with httpx.Client(base_url=self.url, headers=headers,
                              timeout=httpx.Timeout(10, read=60)) as client:  # fmt: skip
                with client.stream("GET", "/api/v1/stream") as response:
                    response.raise_for_status()
                    self._read(response.iter_lines())
        except Exception as error:  # noqa: BLE001 - reported, the soak goes on without it
            if not self._halt.is_set():
                self.error = f"{type(error).__name__}: {error}"

    def _read(self, lines) -> None:
        event = ""
        for line in lines:
            if self._halt.is_set():
                return
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("delta", "snapshot"):
                self._data(event, json.loads(line[5:]), time.time())

    def _data(self, event: str, data: dict, arrived: float) -> None:
        self.events += 1
        self.snapshots += event == "snapshot"
        tracks = data["tracks"] if event == "snapshot" else data["created"] + data["updated"]
        for track in tracks:
            self.track_states += 1
            for source in track["sources"]:
                key = (source.rpartition(":")[0], track["time"])
                published = self.sent.get(key)
                if published is not None and key not in self.latency:
                    self.latency[key] = arrived - published

    def stop(self) -> None:
        # Without deltas the stream sends only a heartbeat every 15 s: do not wait for it.
        self._halt.set()
        self.join(1)
