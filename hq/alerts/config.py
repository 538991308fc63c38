"""What the alert detectors are told: the border, zones, places and thresholds."""

from __future__ import annotations

from dataclasses import dataclass

LatLon = tuple[float, float]


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    radius_m: float  # within this, the desert is not open: help is at hand


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[LatLon, ...]


@dataclass(frozen=True)
class AlertConfig:
    border: tuple[LatLon, ...]
    home: LatLon  # a point on the side of the border HQ guards (a post)
    zones: tuple[Zone, ...] = ()
    places: tuple[Place, ...] = ()  # posts and settlements
    distress_radius_m: float = 30.0
    distress_dwell_s: float = 600.0
    distress_update_s: float = 300.0  # a standing alert is refreshed this often
    node_silence_s: float = 120.0
    battery_low: float = 0.2
    backlog_high: int = 1000
