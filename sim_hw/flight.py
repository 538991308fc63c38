"""Kinematic flight model of a patrol drone, and its truth.

A multirotor flies its waypoints with bounded acceleration and tilts its
thrust vector to make that acceleration; a fixed-wing drone flies at constant
airspeed and turns with bounded bank, coordinated (bank = atan(v ω / g)). Both
take off from the post, fly a plan (patrol legs along the border, a loiter
circle, a lawn-mower survey) and return home. A gimbal points the camera at a
commanded ground point, or holds a fixed depression angle ahead.

Positions are in the post's local ENU frame (`wire.geo.EnuFrame` turns them
into WGS84).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRAVITY = 9.80665


@dataclass(frozen=True)
class Airframe:
    kind: str  # "multirotor" or "fixed_wing"
    cruise_speed: float  # m/s
    max_acceleration: float  # m/s², multirotor
    max_bank: float  # rad, fixed wing
    climb_rate: float  # m/s
    endurance: float  # s of flight on a full battery
    capture_radius: float  # m: a waypoint within this is reached


MULTIROTOR = Airframe("multirotor", 12.0, 3.0, math.radians(35), 4.0, 2400.0, 3.0)
FIXED_WING = Airframe("fixed_wing", 22.0, 0.0, math.radians(30), 3.0, 10800.0, 40.0)
AIRFRAMES = {a.kind: a for a in (MULTIROTOR, FIXED_WING)}


@dataclass
class Trajectory:
    """Truth sampled every dt: ENU position and velocity, attitude (rad, NED convention)."""

    t: np.ndarray  # (K,) s since take-off
    position: np.ndarray  # (K, 3) e, n, u m
    velocity: np.ndarray  # (K, 3) m/s
    roll: np.ndarray  # (K,) rad, right wing down positive
    pitch: np.ndarray  # (K,) rad, nose up positive
    yaw: np.ndarray  # (K,) rad, clockwise from north
    battery: np.ndarray  # (K,) remaining fraction 0..1


def patrol_waypoints(border_enu, offset: float, altitude: float, repeats: int = 1):
    """Legs along a border polyline, `offset` metres on the post's side (left of travel)."""
    border = np.asarray(border_enu, dtype=float)
    direction = np.diff(border, axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    left = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    # Each vertex shifted by the mean normal of the legs that meet there.
    normals = np.vstack([left[:1], (left[:-1] + left[1:]) / 2, left[-1:]])
    path = border + offset * normals
    legs = [path, path[::-1]] * repeats
    return [np.append(p, altitude) for leg in legs for p in leg]


def loiter_waypoints(centre, radius: float, altitude: float, turns: int = 2, points: int = 16):
    angles = np.linspace(0.0, 2 * np.pi * turns, turns * points, endpoint=False)
    e = centre[0] + radius * np.sin(angles)
    n = centre[1] + radius * np.cos(angles)
    return [np.array([a, b, altitude]) for a, b in zip(e, n, strict=True)]


def survey_waypoints(corner_sw, corner_ne, spacing: float, altitude: float):
    """Lawn-mower lines north-south across a box, `spacing` metres apart."""
    easts = np.arange(corner_sw[0], corner_ne[0] + 1e-9, spacing)
    waypoints = []
    for k, e in enumerate(easts):
        ends = (corner_sw[1], corner_ne[1]) if k % 2 == 0 else (corner_ne[1], corner_sw[1])
        waypoints += [np.array([e, ends[0], altitude]), np.array([e, ends[1], altitude])]
    return waypoints


def fly(airframe: Airframe, waypoints, duration: float, dt: float = 0.02) -> Trajectory:
    """Take off, fly the waypoints, return home and land; stop at `duration` at the latest."""
    route = [np.array(w, dtype=float) for w in waypoints]
    cruise_alt = route[0][2] if route else 100.0
    route = [np.array([0.0, 0.0, cruise_alt])] + route + [np.array([0.0, 0.0, cruise_alt])]
    step = _multirotor_step if airframe.kind == "multirotor" else _fixed_wing_step

    pos = np.zeros(3)
    vel = np.zeros(3)
    yaw = 0.0
    k_route = 0
    samples = []
    t = 0.0
    while t <= duration:
        target = route[k_route]
        horizontal = np.linalg.norm(target[:2] - pos[:2])
        if horizontal < airframe.capture_radius and k_route < len(route) - 1:
            k_route += 1
            target = route[k_route]
        landing = k_route == len(route) - 1 and horizontal < airframe.capture_radius
        if landing and pos[2] <= 0.0 and t > 1.0:
            break
        goal = target.copy()
        if landing:
            goal[2] = 0.0
        accel, yaw, roll, pitch = step(airframe, pos, vel, yaw, goal, dt)
        vel = vel + accel * dt
        pos = pos + vel * dt
        if pos[2] < 0.0:
            pos[2], vel[2] = 0.0, max(vel[2], 0.0)
        battery = max(0.0, 1.0 - t / airframe.endurance)
        samples.append((t, *pos, *vel, roll, pitch, yaw, battery))
        t += dt
    a = np.array(samples)
    return Trajectory(a[:, 0], a[:, 1:4], a[:, 4:7], a[:, 7], a[:, 8], a[:, 9], a[:, 10])


def _multirotor_step(airframe, pos, vel, yaw, goal, dt):
    """Velocity command toward the goal, acceleration bounded; tilt makes the acceleration."""
    offset = goal - pos
    distance = np.linalg.norm(offset[:2])
    # Slow down so as to stop at the goal with the available deceleration.
    speed = min(airframe.cruise_speed, math.sqrt(2 * airframe.max_acceleration * distance))
    wanted = np.zeros(3)
    if distance > 1e-6:
        wanted[:2] = offset[:2] / distance * speed
    wanted[2] = np.clip(offset[2], -airframe.climb_rate, airframe.climb_rate)
    accel = (wanted - vel) / max(dt, 0.5)
    norm = np.linalg.norm(accel[:2])
    if norm > airframe.max_acceleration:
        accel[:2] *= airframe.max_acceleration / norm
    if np.linalg.norm(vel[:2]) > 1.0:
        yaw = math.atan2(vel[0], vel[1])
    # The thrust vector (g up plus the horizontal acceleration) in the yawed body frame.
    forward = accel[0] * math.sin(yaw) + accel[1] * math.cos(yaw)
    right = accel[0] * math.cos(yaw) - accel[1] * math.sin(yaw)
    pitch = -math.atan2(forward, GRAVITY)
    roll = math.atan2(right * math.cos(pitch), GRAVITY)
    return accel, yaw, roll, pitch


def _fixed_wing_step(airframe, pos, vel, yaw, goal, dt):
    """Constant airspeed; turn toward the goal at up to the bank limit; climb at a bounded rate."""
    v = airframe.cruise_speed
    bearing = math.atan2(goal[0] - pos[0], goal[1] - pos[1])
    error = (bearing - yaw + math.pi) % (2 * math.pi) - math.pi
    max_rate = GRAVITY * math.tan(airframe.max_bank) / v
    turn_rate = float(np.clip(error / 2.0, -max_rate, max_rate))
    new_yaw = (yaw + turn_rate * dt) % (2 * math.pi)
    climb = float(np.clip(goal[2] - pos[2], -airframe.climb_rate, airframe.climb_rate))
    horizontal = math.sqrt(max(v * v - climb * climb, 0.0))
    new_vel = np.array([horizontal * math.sin(new_yaw), horizontal * math.cos(new_yaw), climb])
    accel = (new_vel - vel) / dt
    roll = math.atan2(v * turn_rate, GRAVITY)
    pitch = math.asin(climb / v)
    return accel, new_yaw, roll, pitch


def gimbal_toward(position, yaw, target=None, depression: float = math.radians(45)):
    """Earth-frame gimbal (pitch, yaw) in radians pointing at `target` (ENU), or ahead.

    Pitch is negative below the horizon (-pi/2 straight down), as MAVLink has it.
    """
    if target is None:
        return -depression, yaw
    offset = np.asarray(target, dtype=float) - position
    horizontal = math.hypot(offset[0], offset[1])
    return math.atan2(offset[2], horizontal), math.atan2(offset[0], offset[1])


def ground_point(position, gimbal_pitch, gimbal_yaw, surface=None):
    """Where the camera's boresight meets the ground (ENU), or None above the horizon.

    `surface(east, north)` gives the ground's ENU height; None is the tangent
    plane up = 0. A curved surface is met by re-aiming at the height found
    under the previous estimate: three rounds reach micrometres at post scale.
    """
    if gimbal_pitch >= 0.0:
        return None
    east, north, up = position[0], position[1], 0.0
    for _ in range(3 if surface is not None else 1):
        reach = (position[2] - up) / math.tan(-gimbal_pitch)
        east = position[0] + reach * math.sin(gimbal_yaw)
        north = position[1] + reach * math.cos(gimbal_yaw)
        if surface is not None:
            up = float(surface(east, north))
    return np.array([east, north, up])
