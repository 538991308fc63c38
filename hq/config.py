"""HQ's configuration: `configs/hq.toml`, loaded into typed models.

The broker password is named (an environment variable or a file), never
written in the TOML. `store` is where HQ keeps everything: a SQLite file (a
path or sqlite:// URL, the default) or a postgresql:// URL (hq/store/__init__.py).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hq.alerts.config import AlertConfig, Place, UnknownPolicy, Zone
from hq.fusion.config import FusionParameters
from hq.store.interface import Store
from hq.store.records import Place as PlaceRecord
from hq.tak.config import TakConfig
from wire.secrets import SecretRef

LatLon = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = "hq"
    password: SecretRef | None = None
    client_id: str = "hq-ingest"  # fixed, so the broker keeps HQ's session across restarts


class PlaceSection(_Strict):
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0)


class ZoneSection(_Strict):
    name: str
    polygon: list[LatLon] = Field(min_length=3)


class AlertSection(_Strict):
    """hq/alerts/config.py's AlertConfig says what each setting does."""

    trace_back_s: float = Field(default=10.0, ge=0)
    measured_within_s: float = Field(default=1.0, ge=0)
    crossing_margin_m: float = Field(default=3.0, ge=0)
    crossing_hold_s: float = Field(default=30.0, ge=0)
    class_confidence: float = Field(default=0.5, ge=0, le=1)
    crossing_class_wait_s: float = Field(default=10.0, ge=0)
    unknown_crossings: UnknownPolicy = "lower"
    animal_probability: float = Field(default=0.4, gt=0, le=1)
    distress_radius_m: float = Field(default=30.0, gt=0)
    distress_stop_radius_m: float = Field(default=8.0, gt=0)
    distress_dwell_s: float = Field(default=600.0, gt=0)
    distress_person_confidence: float = Field(default=0.6, ge=0, le=1)
    distress_verify_confidence: float = Field(default=0.8, ge=0, le=1)
    node_silence_s: float = Field(default=120.0, gt=0)
    battery_low: float = Field(default=0.2, ge=0, le=1)
    backlog_high: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _stop_within_stay(self):
        if self.distress_stop_radius_m > self.distress_radius_m:
            raise ValueError("distress_stop_radius_m must not exceed distress_radius_m")
        return self


class IngestSection(_Strict):
    """What HQ accepts from a post (hq/ingest/ingest.py, hq/ingest/checks.py) and how long a message
    may wait for its commit before ingest counts as stalled (hq/ingest/watchdog.py)."""

    max_unacknowledged_age_s: float = Field(default=60.0, gt=0)  # then /readyz: not ready
    max_age_s: float = Field(default=7 * 86_400.0, gt=0)  # older times: dead letters
    max_skew_s: float = Field(default=300.0, ge=0)  # times further ahead of HQ's clock: same
    post_radius_m: float = Field(default=100_000.0, gt=0)  # positions around their post
    region_radius_m: float = Field(default=1_000_000.0, gt=0)  # posts around `origin`
    rate_per_s: float = Field(default=200.0, gt=0)  # messages per post, sustained ...
    rate_burst: int = Field(default=2000, ge=1)  # ... and at once
    dead_letter_bytes: int = Field(default=16 * 1024, ge=0)  # of a payload kept with its hash


class StreamSection(_Strict):
    """The live stream (Server-Sent Events) of hq/api/live.py."""

    tick_s: float = Field(default=0.5, gt=0, le=10)  # deltas are coalesced per track per tick
    heartbeat_s: float = Field(default=15.0, gt=0)
    ring_events: int = Field(default=120, ge=1)  # how far back Last-Event-ID can resume
    ring_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    client_queue_events: int = Field(default=16, ge=1)  # a client further behind is resynced
    max_resyncs: int = Field(default=3, ge=0)  # ... and dropped after this many in a row
    stale_s: float = Field(default=300.0, gt=0)  # a track silent this long leaves the stream


class ApiSection(_Strict):
    """The HTTP API of hq/api: where it listens and how it guards itself."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (tests)
    cors_origins: list[str] = []  # none: browsers refuse cross-origin calls
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_page: int = Field(default=10_000, ge=1, le=10_000)  # rows one request may ask for
    auth_failures: int = Field(default=10, ge=1)  # per client address per window ...
    auth_failure_window_s: float = Field(default=60.0, gt=0)  # ... then 429 until it passes
    # Addresses of reverse proxies whose X-Forwarded-For names the client (the limit above
    # counts per client). None: the socket's peer is the client, whatever a header says.
    trusted_proxies: list[str] = []
    docs: bool = True  # Swagger UI at /api/v1/docs (its files from HQ); the schema is always served
    stream: StreamSection = StreamSection()


class HqConfig(_Strict):
    origin: tuple[float, float, float]  # lat, lon, alt of HQ's ENU frame (e.g. the first post)
    border: list[LatLon] = Field(min_length=2)
    home: LatLon  # a point on the side of the border HQ guards
    zones: list[ZoneSection] = []
    places: list[PlaceSection] = []  # posts and settlements: help within their radius
    # A SQLite file (path or sqlite:// URL) or a postgresql:// URL; `database` is its older
    # name (a SQLite path), still read.
    store: str = "/var/lib/dunewatch/hq.db"
    history_days: int = Field(default=30, ge=1)
    dead_letter_days: int = Field(default=30, ge=1)
    broker: BrokerSection = BrokerSection()
    fusion: FusionParameters = FusionParameters()
    alerts: AlertSection = AlertSection()
    ingest: IngestSection = IngestSection()
    api: ApiSection | None = None  # None: ingest only, no HTTP API
    tak: TakConfig | None = None  # Cursor-on-Target to a TAK server or client; None: no CoT

    @model_validator(mode="before")
    @classmethod
    def _database_is_the_store(cls, raw):
        if isinstance(raw, dict) and "database" in raw:
            if "store" in raw:
                raise ValueError("give `store` only (`database` is its older name)")
            raw = {**{k: v for k, v in raw.items() if k != "database"},
                   "store": str(raw["database"])}  # fmt: skip
        return raw

    def seed_geography(self, store: Store, now: float) -> None:
        """The border, zones and places of this file, into a store that has none yet (after
        that the store is the truth: what admins change through the API stays)."""
        store.seed_geography(self.border, {z.name: z.polygon for z in self.zones},
                             [PlaceRecord(p.name, p.lat, p.lon, p.radius_m, "config", now)
                              for p in self.places], now)  # fmt: skip

    def alert_config(self) -> AlertConfig:
        return AlertConfig(
            border=tuple(self.border), home=self.home,
            zones=tuple(Zone(z.name, tuple(z.polygon)) for z in self.zones),
            places=tuple(Place(p.name, p.lat, p.lon, p.radius_m) for p in self.places),
            **self.alerts.model_dump(),
        )  # fmt: skip


def load_config(path: str | Path) -> HqConfig:
    with open(path, "rb") as f:
        return HqConfig.model_validate(tomllib.load(f))
