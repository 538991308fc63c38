"""Shared by the HQ API tests: a real SQLite store filled through `commit_ingest`, a token per
role, and the app behind Starlette's TestClient (which runs its lifespan). No tests here."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from hq.api.app import create_app
from hq.api.live import LiveFeed
from hq.api.tokens import TokenStore
from hq.config import HqConfig
from hq.store.interface import Store
from hq.store.records import FusedTrack, HistoryPoint, IngestBatch, NodeTrack
from hq.store.sqlite import SqliteStore
from tests.conftest import PROJECT_ROOT
from wire.messages import Alert, DroneLink, NodeStatus, Track

NODE = "tummo/post-1"
COVARIANCE = (25.0, 1.5, 0, 0, 1.5, 20.0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.4)
ZONE = [[22.0, 13.0], [22.0, 13.5], [22.5, 13.5]]
# Three live tracks, far enough apart for boxes to tell them apart; latitude and longitude
# differ enough (22.x vs 14.x) that a swapped GeoJSON position cannot pass for a right one.
TRACKS = {1: (22.84, 14.13, "person"), 2: (22.90, 14.40, "vehicle"), 3: (23.10, 14.60, "animal")}


def fused(gid: int, t: float, lat: float = 22.84, lon: float = 14.13, cls: str = "person",
          status: str = "confirmed") -> FusedTrack:  # fmt: skip
    return FusedTrack(gid, float(t), lat, lon, 600.0, (10.0, 20.0, 3.0, 4.0), COVARIANCE, cls,
                      status, 0.9, (f"{NODE}:{gid + 100}",))  # fmt: skip


def node_track(track_id: int, t: float, lat: float, lon: float) -> Track:
    return Track(track_id=track_id, time=t, lat=lat, lon=lon, alt=600.0,
                 position_enu=(1.0, 2.0), velocity_enu=(0.1, 0.2),
                 position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                 velocity_covariance=[[0.5, 0.0], [0.0, 0.5]], status="confirmed",
                 quality=0.8, hits=5)  # fmt: skip


def an_alert(alert_id: str, t: float, lat: float | None = 22.9, lon: float | None = 14.2,
             alert_type: str = "distress") -> Alert:  # fmt: skip
    return Alert(site="hq", node="fusion", alert_id=alert_id, alert_type=alert_type,
                 severity="critical", time=t, message=f"{alert_type} {alert_id}", lat=lat,
                 lon=lon, track_ids=[1])  # fmt: skip


def settings(tmp_path: Path, **api) -> HqConfig:
    with open(PROJECT_ROOT / "configs" / "hq.toml", "rb") as f:
        raw = tomllib.load(f)
    raw["store"] = str(tmp_path / "hq.db")
    raw["zones"] = [{"name": "wadi", "polygon": ZONE}]
    raw["api"] = {**raw.get("api", {}), **api}
    return HqConfig.model_validate(raw)


def fill(store: Store, now: float) -> None:
    """A post's status, three fused tracks with their node tracks, an hour of history of
    track 1 (one point a second), and two alerts; each batch through commit_ingest."""
    status = NodeStatus(site="tummo", node="post-1", state="online", time=now - 5,
                        software_version="1.2.3", lat=22.84, lon=14.13, outbox_depth=4,
                        drones=[DroneLink(sysid=1, connected=True, packet_loss=0.02,
                                          battery_remaining=0.55, lat=22.85, lon=14.14,
                                          alt=700.0)])  # fmt: skip
    tracks = [fused(gid, now, lat, lon, cls) for gid, (lat, lon, cls) in TRACKS.items()]
    store.commit_ingest(IngestBatch(
        now, node_key=NODE, seq=1, statuses=[status], fused_tracks=tracks,
        node_tracks=[NodeTrack(NODE, node_track(gid + 100, now, lat, lon), gid)
                     for gid, (lat, lon, _) in TRACKS.items()],
        history=[HistoryPoint.of(t) for t in tracks],
        alerts=[an_alert("distress-1", now - 60), an_alert("node-x", now - 30, None, None,
                                                           "node_offline")],
    ))  # fmt: skip
    walk = [fused(1, now - 3600 + k, 22.80 + k * 1e-5, 14.10 + k * 1e-5) for k in range(3600)]
    store.commit_ingest(IngestBatch(now, history=[HistoryPoint.of(t) for t in walk]))


@dataclass
class Api:
    client: TestClient
    store: SqliteStore
    feed: LiveFeed
    settings: HqConfig
    tokens: dict[str, str]  # role -> token
    now: float

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_tokens(store: Store) -> dict[str, str]:
    tokens = TokenStore(store)
    return {role: tokens.create(f"{role}-user", role)[0]
            for role in ("viewer", "operator", "admin")}  # fmt: skip


def running_api(tmp_path: Path) -> Iterator[Api]:
    """The app over a filled store with a token per role; a fixture's body (`yield from`)."""
    config = settings(tmp_path, auth_failures=1000)
    store = SqliteStore(config.store)
    now = time.time()
    fill(store, now)
    tokens = make_tokens(store)
    feed = LiveFeed(tick_s=0.05)
    with TestClient(create_app(store, config, feed)) as client:
        yield Api(client, store, feed, config, tokens, now)
    store.close()
