"""HQ's configuration: `configs/hq.toml`, loaded into typed models.

The broker password is named (an environment variable or a file), never
written in the TOML.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hq.alerts import AlertConfig, Place, Zone
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
    distress_radius_m: float = Field(default=30.0, gt=0)
    distress_dwell_s: float = Field(default=600.0, gt=0)
    node_silence_s: float = Field(default=120.0, gt=0)
    battery_low: float = Field(default=0.2, ge=0, le=1)
    backlog_high: int = Field(default=1000, ge=1)


class HqConfig(_Strict):
    origin: tuple[float, float, float]  # lat, lon, alt of HQ's ENU frame (e.g. the first post)
    border: list[LatLon] = Field(min_length=2)
    home: LatLon  # a point on the side of the border HQ guards
    zones: list[ZoneSection] = []
    places: list[PlaceSection] = []  # posts and settlements: help within their radius
    database: Path = Path("/var/lib/dunewatch/hq.db")
    history_days: int = Field(default=30, ge=1)
    dead_letter_days: int = Field(default=30, ge=1)
    broker: BrokerSection = BrokerSection()
    alerts: AlertSection = AlertSection()

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
