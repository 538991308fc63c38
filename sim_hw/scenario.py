"""A scenario: posts, a border, patrol drones and the ground targets they should find.

A scenario file (`configs/scenarios/*.toml`, schema `ScenarioConfig` below)
places border posts, the border line, drones with flight plans, and groups of
ground targets that follow routes: walkers, 4x4 vehicles and convoys, camels,
and a group that walks out and then stays put (people stranded in the
desert); and fixed warm spots on the ground (`[[warm_ground]]`: rocks that
hold the day's heat, which the thermal camera draws and a tracker may take for
people). `build` turns it into each drone's flight and every target's motion;
`write_scenario` writes one .tlog per drone and `truth.jsonl`, the ground
truth later stages are scored against.

`truth.jsonl` holds one header line (`"kind": "scenario"`: posts, border, the
targets and their classes, and the events a correct system must report: each
border crossing and each group that became stationary), then one line per
truth period (`"kind": "truth"`) with every target present and every drone
airborne: WGS84, ENU in the first post's frame, velocity.
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim_hw.flight import (
    AIRFRAMES,
    fly,
    gimbal_toward,
    loiter_waypoints,
    patrol_waypoints,
    survey_waypoints,
)
from sim_hw.telemetry import Drone
from sim_hw.terrain import ground_up
from wire.geo import EnuFrame, segment_crossing

TARGET_CLASS = {"walkers": "person", "vehicles": "vehicle", "camels": "animal"}
MAV_TYPE = {"multirotor": 2, "fixed_wing": 1}  # MAV_TYPE_QUADROTOR, MAV_TYPE_FIXED_WING
LatLon = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostConfig(_Strict):
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float  # terrain height above the WGS84 ellipsoid, m


class DroneConfig(_Strict):
    sysid: int = Field(ge=1, le=254)
    post: str
    airframe: Literal["multirotor", "fixed_wing"]
    plan: Literal["patrol", "loiter", "survey"]
    altitude: float = Field(gt=0)  # above the post, m
    takeoff_s: float = Field(default=0.0, ge=0)
    # patrol: legs along the border, this far each way from the point nearest the post
    patrol_half_length: float = 4000.0
    patrol_offset: float = 300.0  # m to the post's side of the line
    centre: LatLon | None = None  # loiter
    radius: float = 250.0  # loiter, m
    loiter_turns: int = Field(default=2, ge=1, le=1000)  # circles flown before going home
    patrol_repeats: int = Field(default=1, ge=1, le=1000)  # out-and-back legs before home
    corners: tuple[LatLon, LatLon] | None = None  # survey: south-west, north-east
    spacing: float = 150.0  # survey line spacing, m
    gimbal_target: LatLon | None = None  # else the camera looks ahead, depressed
    gimbal_depression_deg: float = Field(default=45.0, gt=0, le=90)

    @model_validator(mode="after")
    def _plan_has_its_geometry(self):
        if self.plan == "loiter" and self.centre is None:
            raise ValueError(f"drone {self.sysid}: a loiter plan needs centre = [lat, lon]")
        if self.plan == "survey" and self.corners is None:
            raise ValueError(f"drone {self.sysid}: a survey plan needs corners = [[sw], [ne]]")
        return self


class TargetGroupConfig(_Strict):
    """Members follow the route one behind the other, each with a small fixed side offset."""

    name: str
    kind: Literal["walkers", "vehicles", "camels"]
    count: int = Field(default=1, ge=1, le=200)
    route: list[LatLon] = Field(min_length=2)
    speed: float = Field(gt=0)  # m/s along the route
    start_s: float = Field(default=0.0, ge=0)
    spacing: float = Field(default=2.0, ge=0)  # m between members along the route
    spread: float = Field(default=1.0, ge=0)  # m, scale of each member's side offset
    at_end: Literal["leave", "stay"] = "leave"  # stay: stranded, stationary from then on
    meander: float = Field(default=0.0, ge=0)  # m amplitude of a slow wander (camels)


class WarmGroundConfig(_Strict):
    """Fixed warm spots on the ground inside a circle: rocks and stony patches that hold the
    day's heat, drawn by the thermal camera only. Their places, sizes and contrasts come
    from the scenario's seed; none moves, so a tracker that confirms one is fooled by it."""

    name: str
    centre: LatLon
    radius_m: float = Field(gt=0, le=5000)  # spots scattered uniformly within this
    count: int = Field(ge=1, le=2000)
    size_m: tuple[float, float] = (0.4, 1.4)  # longer side of a footprint, drawn uniformly
    contrast_k: tuple[float, float] = (4.0, 10.0)  # warmer than bare sand at night, K

    @model_validator(mode="after")
    def _ranges_are_ordered(self):
        for name in ("size_m", "contrast_k"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"warm ground {self.name!r}: {name} needs 0 < low <= high")
        return self


class ScenarioConfig(_Strict):
    name: str
    description: str = ""
    start: datetime  # scenario time 0, with its UTC offset (TOML: 2026-03-14T20:30:00Z)
    duration_s: float = Field(gt=0)
    truth_period_s: float = Field(default=0.5, gt=0)
    seed: int = 0
    posts: list[PostConfig] = Field(min_length=1)
    border: list[LatLon] = Field(min_length=2)
    drones: list[DroneConfig] = []
    targets: list[TargetGroupConfig] = []
    warm_ground: list[WarmGroundConfig] = []

    @model_validator(mode="after")
    def _references_resolve(self):
        posts = {p.name for p in self.posts}
        for drone in self.drones:
            if drone.post not in posts:
                raise ValueError(f"drone {drone.sysid}: unknown post {drone.post!r}")
        if self.start.tzinfo is None:
            raise ValueError("start needs its UTC offset, e.g. 2026-03-14T20:30:00Z")
        sysids = [d.sysid for d in self.drones]
        if len(set(sysids)) != len(sysids):
            raise ValueError(f"drone system ids must differ, got {sysids}")
        return self

    @property
    def start_utc(self) -> float:
        return self.start.timestamp()

    def starting_at(self, utc: float) -> ScenarioConfig:
        """The same scenario with time 0 at `utc`: a live run writes its tlogs and
        renders its cameras in the present, so they agree with the wall clock."""
        return self.model_copy(update={"start": datetime.fromtimestamp(utc, tz=UTC)})

    def post(self, name: str) -> PostConfig:
        return next(p for p in self.posts if p.name == name)


def epoch_arg(text: str) -> float:
    """A command-line epoch: UTC seconds, or 'now', 'now+S', 'now-S'."""
    try:
        if text.startswith("now"):
            return time.time() + (float(text[3:]) if text[3:] else 0.0)
        return float(text)
    except ValueError:
        message = f"expected UTC seconds or now[+-S], got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def load_config(path: str | Path) -> ScenarioConfig:
    with open(path, "rb") as f:
        return ScenarioConfig.model_validate(tomllib.load(f))


# --- ground targets -------------------------------------------------------------------


@dataclass(frozen=True)
class GroundTarget:
    target_id: str
    group: str
    target_class: str
    route: np.ndarray  # (K, 2) ENU e, n in the origin frame
    speed: float
    start_s: float  # when the member sets off (the group's start plus its place in line)
    side_offset: np.ndarray  # (2,) fixed ENU offset from the route
    meander: float
    meander_phase: float
    stays: bool

    @property
    def route_length(self) -> float:
        return float(np.sum(np.linalg.norm(np.diff(self.route, axis=0), axis=1)))

    @property
    def arrival_s(self) -> float:
        return self.start_s + self.route_length / self.speed

    def position(self, t: np.ndarray) -> np.ndarray:
        """(len(t), 2) ENU e, n; NaN where the target is not in the scene."""
        t = np.asarray(t, dtype=float)
        travelled = (t - self.start_s) * self.speed
        along = _point_along(self.route, np.clip(travelled, 0.0, self.route_length))
        # A slow wander across the route whose amplitude vanishes at standstill.
        moving = (travelled > 0) & (travelled < self.route_length)
        wander = self.meander * np.sin(2 * np.pi * t / 300.0 + self.meander_phase) * moving
        position = along + self.side_offset + wander[:, None] * np.array([0.6, 0.8])
        absent = (travelled < 0) | ((travelled > self.route_length) & (not self.stays))
        position[absent] = np.nan
        return position


def _point_along(route: np.ndarray, distance: np.ndarray) -> np.ndarray:
    legs = np.diff(route, axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(np.linalg.norm(legs, axis=1))])
    return np.stack([np.interp(distance, cumulative, route[:, k]) for k in range(2)], axis=1)


def ground_targets(config: ScenarioConfig, origin: EnuFrame) -> list[GroundTarget]:
    rng = np.random.default_rng(config.seed)
    targets = []
    for group in config.targets:
        route = to_enu(origin, group.route)
        for member in range(group.count):
            targets.append(GroundTarget(
                target_id=f"{group.name}-{member + 1}", group=group.name,
                target_class=TARGET_CLASS[group.kind], route=route, speed=group.speed,
                start_s=group.start_s + member * group.spacing / group.speed,
                side_offset=rng.normal(0.0, group.spread, size=2),
                meander=group.meander, meander_phase=float(rng.uniform(0, 2 * np.pi)),
                stays=group.at_end == "stay",
            ))  # fmt: skip
    return targets


@dataclass(frozen=True)
class WarmSpot:
    """One warm patch of ground: an elliptic footprint lying flat, warmer than the sand."""

    spot_id: str
    east: float  # m in the origin frame
    north: float
    length_m: float
    width_m: float
    heading: float  # rad clockwise from north, of its length
    contrast_k: float  # over bare sand at night; the day's heat evens it out


def warm_spots(config: ScenarioConfig, origin: EnuFrame) -> list[WarmSpot]:
    """Every warm spot of the scenario, the same for every camera that draws it."""
    spots = []
    for k, area in enumerate(config.warm_ground):
        rng = np.random.default_rng([config.seed, 0x3A9E, k])
        centre = to_enu(origin, [area.centre, area.centre])[0]
        radius = area.radius_m * np.sqrt(rng.uniform(0, 1, area.count))
        angle = rng.uniform(0, 2 * np.pi, area.count)
        length = rng.uniform(*area.size_m, area.count)
        width = length * rng.uniform(0.5, 1.0, area.count)
        heading = rng.uniform(0, np.pi, area.count)
        contrast = rng.uniform(*area.contrast_k, area.count)
        for m in range(area.count):
            spots.append(WarmSpot(
                f"{area.name}-{m + 1}", float(centre[0] + radius[m] * np.sin(angle[m])),
                float(centre[1] + radius[m] * np.cos(angle[m])), float(length[m]),
                float(width[m]), float(heading[m]), float(contrast[m]),
            ))  # fmt: skip
    return spots


def to_enu(origin: EnuFrame, points: list[LatLon]) -> np.ndarray:
    lat, lon = np.array(points, dtype=float).T
    east, north, _ = origin.from_geodetic(lat, lon, np.full_like(lat, origin.alt))
    return np.stack([east, north], axis=1)


# --- drones ----------------------------------------------------------------------------


def flight_plan(config: ScenarioConfig, drone: DroneConfig) -> list[np.ndarray]:
    """Waypoints in the drone's post's ENU frame."""
    post = config.post(drone.post)
    frame = EnuFrame(post.lat, post.lon, post.alt)
    if drone.plan == "patrol":
        border = _border_near(to_enu(frame, config.border), drone.patrol_half_length)
        return patrol_waypoints(border, drone.patrol_offset, drone.altitude,
                                drone.patrol_repeats)  # fmt: skip
    if drone.plan == "loiter":
        centre = to_enu(frame, [drone.centre, drone.centre])[0]
        return loiter_waypoints(centre, drone.radius, drone.altitude, drone.loiter_turns)
    south_west, north_east = to_enu(frame, list(drone.corners))
    return survey_waypoints(south_west, north_east, drone.spacing, drone.altitude)


def _border_near(border: np.ndarray, half_length: float) -> np.ndarray:
    """The part of the border within `half_length` of the point nearest the post (the
    origin), oriented so that the post is on its left, as a patrol keeps to its side."""
    legs = np.diff(border, axis=0)
    lengths = np.linalg.norm(legs, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    along = np.clip(np.einsum("ij,ij->i", -border[:-1], legs) / lengths**2, 0.0, 1.0)
    nearest = border[:-1] + along[:, None] * legs
    leg = int(np.argmin(np.linalg.norm(nearest, axis=1)))
    s_nearest = cumulative[leg] + along[leg] * lengths[leg]
    s = np.linspace(max(0.0, s_nearest - half_length),
                    min(cumulative[-1], s_nearest + half_length), 9)  # fmt: skip
    inside = cumulative[(cumulative > s[0]) & (cumulative < s[-1])]
    s = np.union1d(s, inside)
    clipped = _point_along(border, s)
    direction = clipped[-1] - clipped[0]
    post_is_left = direction[0] * -clipped[0][1] - direction[1] * -clipped[0][0] > 0
    return clipped if post_is_left else clipped[::-1]


def drone_of(config: ScenarioConfig, drone: DroneConfig) -> Drone:
    post = config.post(drone.post)
    frame = EnuFrame(post.lat, post.lon, post.alt)
    trajectory = fly(AIRFRAMES[drone.airframe], flight_plan(config, drone),
                     config.duration_s - drone.takeoff_s)  # fmt: skip
    target = None
    if drone.gimbal_target is not None:
        east, north = to_enu(frame, [drone.gimbal_target, drone.gimbal_target])[0]
        target = (east, north, ground_up(frame, east, north))
    depression = math.radians(drone.gimbal_depression_deg)
    gimbal = np.array([
        gimbal_toward(p, y, target, depression)
        for p, y in zip(trajectory.position, trajectory.yaw, strict=True)
    ])  # fmt: skip
    return Drone(drone.sysid, frame, trajectory, gimbal[:, 0], gimbal[:, 1],
                 config.start_utc + drone.takeoff_s, mav_type=MAV_TYPE[drone.airframe])  # fmt: skip


# --- the events a correct system reports ------------------------------------------------


def border_crossings(target: GroundTarget, border: np.ndarray, times: np.ndarray,
                     start_utc: float) -> list[dict]:  # fmt: skip
    """Each time the target's path crosses the border: when, and which way."""
    path = target.position(times)
    crossings = []
    for k in range(len(times) - 1):
        a, b = path[k], path[k + 1]
        if np.isnan(a).any() or np.isnan(b).any():
            continue
        for p, q in zip(border[:-1], border[1:], strict=True):
            fraction = segment_crossing(a, b, p, q)
            if fraction is None:
                continue
            side = (q[0] - p[0]) * (b[1] - p[1]) - (q[1] - p[1]) * (b[0] - p[0])
            origin_side = (q[0] - p[0]) * (0 - p[1]) - (q[1] - p[1]) * (0 - p[0])
            crossings.append({
                "target": target.target_id, "group": target.group, "class": target.target_class,
                "t": start_utc + times[k] + fraction * (times[k + 1] - times[k]),
                "direction": "inbound" if side * origin_side > 0 else "outbound",
            })  # fmt: skip
    return crossings


def stationary_groups(targets: list[GroundTarget], config: ScenarioConfig,
                      origin: EnuFrame) -> list[dict]:  # fmt: skip
    """Groups that stop and stay (stranded people): since when, and where."""
    events = []
    for group in {t.group for t in targets if t.stays}:
        members = [t for t in targets if t.group == group]
        since = max(t.arrival_s for t in members)
        if since >= config.duration_s:
            continue
        centre = np.mean([t.position(np.array([since]))[0] for t in members], axis=0)
        lat, lon, _ = origin.to_geodetic(*centre, ground_up(origin, *centre))
        events.append({
            "group": group, "class": members[0].target_class, "members": len(members),
            "since": config.start_utc + since, "lat": float(lat), "lon": float(lon),
            "enu": [round(float(c), 3) for c in centre],
        })  # fmt: skip
    return sorted(events, key=lambda e: e["since"])
