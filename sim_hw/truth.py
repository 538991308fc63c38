"""A scenario's ground truth as JSON lines: written by the simulator, read by scoring.

The first line is the header (`"kind": "scenario"`); each following line
(`"kind": "truth"`) is one instant: every target in the scene and every drone
in the air, in WGS84 and in the ENU frame of the scenario's first post.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sim_hw.scenario import (
    GroundTarget,
    ScenarioConfig,
    border_crossings,
    drone_of,
    ground_targets,
    stationary_groups,
    to_enu,
    warm_spots,
)
from sim_hw.telemetry import Drone, frames, local_level
from sim_hw.terrain import ground_up
from sim_hw.tlog import write_tlog
from wire.geo import EnuFrame

VELOCITY_STEP_S = 0.05  # half-width of the central difference giving target velocities


def header(config: ScenarioConfig, origin: EnuFrame, targets: list[GroundTarget],
           drones: list[Drone], tlogs: dict[int, str]) -> dict:  # fmt: skip
    times = np.arange(0.0, config.duration_s, min(config.truth_period_s, 0.5))
    border = to_enu(origin, config.border)
    crossings = [c for t in targets for c in border_crossings(t, border, times, config.start_utc)]
    return {
        "kind": "scenario", "name": config.name, "start_utc": config.start_utc,
        "duration_s": config.duration_s, "period_s": config.truth_period_s,
        "origin": {"lat": origin.lat, "lon": origin.lon, "alt": origin.alt},
        "posts": [p.model_dump() for p in config.posts],
        "border": [list(p) for p in config.border],
        "targets": [{"id": t.target_id, "group": t.group, "class": t.target_class}
                    for t in targets],
        "drones": [{"sysid": d.sysid, "tlog": tlogs[d.sysid]} for d in drones],
        "crossings": sorted(crossings, key=lambda c: c["t"]),
        "stationary": stationary_groups(targets, config, origin),
        # Fixed warm ground (thermal clutter): where a false track may sit.
        "warm_spots": [{"id": w.spot_id, "enu": [round(w.east, 3), round(w.north, 3)],
                        "length_m": round(w.length_m, 3), "contrast_k": round(w.contrast_k, 2)}
                       for w in warm_spots(config, origin)],
    }  # fmt: skip


def samples(config: ScenarioConfig, origin: EnuFrame, targets: list[GroundTarget],
            drones: list[Drone]) -> Iterator[dict]:  # fmt: skip
    times = np.arange(0.0, config.duration_s + 1e-9, config.truth_period_s)
    target_rows = [_target_rows(t, times, origin) for t in targets]
    drone_rows = [_drone_rows(d, times + config.start_utc, origin) for d in drones]
    for k, t in enumerate(times):
        yield {
            "kind": "truth", "t": round(config.start_utc + float(t), 6),
            "targets": [rows[k] for rows in target_rows if rows[k] is not None],
            "drones": [rows[k] for rows in drone_rows if rows[k] is not None],
        }  # fmt: skip


def _target_rows(target: GroundTarget, times: np.ndarray, origin: EnuFrame) -> list:
    position = target.position(times)
    ahead = target.position(times + VELOCITY_STEP_S)
    behind = target.position(times - VELOCITY_STEP_S)
    velocity = (ahead - behind) / (2 * VELOCITY_STEP_S)
    # At the edges of its time in the scene one of the two is missing: difference one side.
    one_sided_ahead = (ahead - position) / VELOCITY_STEP_S
    one_sided_behind = (position - behind) / VELOCITY_STEP_S
    velocity = np.where(np.isnan(velocity), one_sided_ahead, velocity)
    velocity = np.where(np.isnan(velocity), one_sided_behind, velocity)
    up = ground_up(origin, position[:, 0], position[:, 1])
    lat, lon, alt = origin.to_geodetic(position[:, 0], position[:, 1], up)
    rows = []
    for k in range(len(times)):
        if np.isnan(position[k, 0]):
            rows.append(None)
            continue
        rows.append({
            "id": target.target_id, "lat": round(float(lat[k]), 8),
            "lon": round(float(lon[k]), 8), "alt": round(float(alt[k]), 3),
            "enu": [round(float(position[k, 0]), 3), round(float(position[k, 1]), 3),
                    round(float(up[k]), 3)],
            "velocity_enu": [round(float(velocity[k, 0]), 3), round(float(velocity[k, 1]), 3),
                             0.0],
        })  # fmt: skip
    return rows


def _drone_rows(drone: Drone, utc: np.ndarray, origin: EnuFrame) -> list:
    trajectory = drone.trajectory
    flight_time = utc - drone.start_utc
    index = np.searchsorted(trajectory.t, flight_time - 1e-9)
    airborne = (flight_time >= 0) & (index < len(trajectory.t))
    index = np.minimum(index, len(trajectory.t) - 1)
    lat, lon, alt = drone.frame.to_geodetic(*trajectory.position[index].T)
    east, north, up = origin.from_geodetic(lat, lon, alt)
    # The velocity turned from the drone's post's frame into the origin's (posts tens of
    # kilometres apart have norths that differ by milliradians).
    ahead = drone.frame.to_geodetic(*(trajectory.position[index] + trajectory.velocity[index]).T)
    velocity = np.stack(origin.from_geodetic(*ahead), axis=1) - np.stack([east, north, up], axis=1)
    rows = []
    for k, i in enumerate(index):
        if not airborne[k]:
            rows.append(None)
            continue
        # Attitudes as MAVLink means them: against the drone's own north and level.
        roll, pitch, yaw = local_level(drone.frame, lat[k], lon[k], trajectory.roll[i],
                                       trajectory.pitch[i], trajectory.yaw[i])  # fmt: skip
        _, gimbal_pitch, gimbal_yaw = local_level(drone.frame, lat[k], lon[k], 0.0,
                                                  drone.gimbal_pitch[i], drone.gimbal_yaw[i])
        rows.append({
            "sysid": drone.sysid, "lat": round(float(lat[k]), 8), "lon": round(float(lon[k]), 8),
            "alt": round(float(alt[k]), 3),
            "enu": [round(float(east[k]), 3), round(float(north[k]), 3), round(float(up[k]), 3)],
            "velocity_enu": [round(float(v), 3) for v in velocity[k]],
            "roll": float(roll), "pitch": float(pitch), "yaw": float(yaw),
            "gimbal_pitch": float(gimbal_pitch), "gimbal_yaw": float(gimbal_yaw),
            "battery": float(trajectory.battery[i]),
        })  # fmt: skip
    return rows


def write_scenario(config: ScenarioConfig, out_dir: str | Path) -> Path:
    """Each drone's .tlog and the scenario's truth.jsonl into `out_dir`; the truth's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = config.posts[0]
    origin = EnuFrame(first.lat, first.lon, first.alt)
    targets = ground_targets(config, origin)
    drones = [drone_of(config, d) for d in config.drones]
    tlogs = {}
    for drone in drones:
        name = f"{config.name}-sysid{drone.sysid}.tlog"
        write_tlog(out_dir / name, frames(drone))
        tlogs[drone.sysid] = name
    truth_path = out_dir / "truth.jsonl"
    write(truth_path, header(config, origin, targets, drones, tlogs),
          samples(config, origin, targets, drones))  # fmt: skip
    return truth_path


def write(path: str | Path, head: dict, rows: Iterator[dict]) -> int:
    count = 0
    with open(path, "w") as out:
        out.write(json.dumps(head) + "\n")
        for row in rows:
            out.write(json.dumps(row) + "\n")
            count += 1
    return count


def read(path: str | Path) -> tuple[dict, list[dict]]:
    """(header, truth rows) of a truth.jsonl."""
    with open(path) as f:
        head = json.loads(f.readline())
        if head.get("kind") != "scenario":
            raise ValueError(f"{path}: the first line is not a scenario header")
        return head, [json.loads(line) for line in f]
