"""What the alert detectors are told: the border, zones, places and thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LatLon = tuple[float, float]
# What a border crossing of a track whose class is not known well enough raises: an alert
# like any other, one of lower severity (info), or none.
UnknownPolicy = Literal["alert", "lower", "ignore"]


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
    # Only where detections put a track counts: a state (a coasting track's prediction, its
    # velocity maybe wrong) is traced back to its newest detection, if that is at most
    # `trace_back_s` old; older, the state is not used. A track not detected for
    # `measured_within_s` is lost for now (a new track there may be it, found again).
    trace_back_s: float = 10.0
    measured_within_s: float = 1.0
    # A crossing: measured positions at least this far from the line on each side of it ...
    crossing_margin_m: float = 3.0
    # ... and a track alerted is not alerted again (either way) for this long: jitter.
    crossing_hold_s: float = 30.0
    # A class counts when the fused belief in it is at least this; below, the class is
    # unknown and `unknown_crossings` says what its crossings raise.
    class_confidence: float = 0.5
    # A crossing of a track not yet classed waits this long for its class (a node needs a
    # few detections to tell); still unknown then, `unknown_crossings` decides.
    crossing_class_wait_s: float = 10.0
    unknown_crossings: UnknownPolicy = "lower"
    # A track believed an animal at least this much raises no crossing, whatever else it
    # may be: camels cross where people do.
    animal_probability: float = 0.4
    distress_radius_m: float = 30.0  # a stay: within this of where it began; beyond: moved on
    # Stopped: within this of where the track last moved to; the dwell counts from then.
    distress_stop_radius_m: float = 8.0
    distress_dwell_s: float = 600.0
    distress_update_s: float = 300.0  # a standing alert is refreshed this often
    # Belief in "person" that a stop seen happening needs for a distress alert, and that a
    # track found already stationary (never seen moving) needs for "possible stranded
    # people, verify": higher, since a warm rock never moves either.
    distress_person_confidence: float = 0.6
    distress_verify_confidence: float = 0.8
    node_silence_s: float = 120.0
    battery_low: float = 0.2
    backlog_high: int = 1000
