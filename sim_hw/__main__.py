"""`python -m sim_hw generate|scenario|replay|camera|klv-video ...`: simulated drone
flights as .tlog files, whole scenarios with their ground truth, any .tlog replayed as
a live vehicle, and a scenario's cameras (MJPEG, or STANAG 4609 video with KLV)."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from pymavlink.dialects.v20 import common as mavlink

from sim_hw.flight import (
    AIRFRAMES,
    fly,
    gimbal_toward,
    loiter_waypoints,
    patrol_waypoints,
    survey_waypoints,
)
from sim_hw.telemetry import Drone, frames, local_level
from sim_hw.terrain import ground_up
from sim_hw.tlog import write_tlog
from wire.geo import EnuFrame
from wire.stopping import stop_on_sigterm_as_on_ctrl_c

MAV_TYPES = {"multirotor": mavlink.MAV_TYPE_QUADROTOR, "fixed_wing": mavlink.MAV_TYPE_FIXED_WING}


def plan_waypoints(plan: str, altitude: float):
    """The three stock plans around a post at the origin (ENU metres)."""
    if plan == "patrol":
        border = [(-3000.0, 2000.0), (0.0, 2500.0), (3000.0, 2000.0)]
        return patrol_waypoints(border, offset=300.0, altitude=altitude)
    if plan == "loiter":
        return loiter_waypoints((800.0, 1200.0), radius=250.0, altitude=altitude)
    if plan == "survey":
        return survey_waypoints((-600.0, 500.0), (600.0, 1500.0), 150.0, altitude)
    raise ValueError(f"unknown plan {plan!r}")


def generate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim_hw generate")
    parser.add_argument("--out", required=True, help="the .tlog to write")
    parser.add_argument("--truth", help="true poses, JSON lines (default: OUT.truth.jsonl)")
    parser.add_argument("--airframe", choices=sorted(AIRFRAMES), default="multirotor")
    parser.add_argument("--plan", choices=["patrol", "loiter", "survey"], default="patrol")
    # The default post stands in the Fezzan, southern Libya; any position works.
    parser.add_argument("--lat", type=float, default=22.694, help="post latitude, deg")
    parser.add_argument("--lon", type=float, default=14.180, help="post longitude, deg")
    parser.add_argument("--alt", type=float, default=700.0, help="post height (ellipsoid), m")
    parser.add_argument("--altitude", type=float, default=120.0, help="height above the post, m")
    parser.add_argument("--duration", type=float, default=600.0, help="s, at most")
    parser.add_argument("--sysid", type=int, default=1)
    parser.add_argument("--start", type=float, default=None, help="UTC s of take-off; default now")
    parser.add_argument(
        "--gimbal-target",
        type=float,
        nargs=2,
        metavar=("EAST", "NORTH"),
        help="ground point the camera follows; default: 45 deg down ahead",
    )
    args = parser.parse_args(argv)

    frame = EnuFrame(args.lat, args.lon, args.alt)
    airframe = AIRFRAMES[args.airframe]
    trajectory = fly(airframe, plan_waypoints(args.plan, args.altitude), args.duration)
    target = None
    if args.gimbal_target is not None:
        target = (*args.gimbal_target, ground_up(frame, *args.gimbal_target))
    poses = zip(trajectory.position, trajectory.yaw, strict=True)
    gimbal = np.array([gimbal_toward(p, y, target) for p, y in poses])
    start = time.time() if args.start is None else args.start
    drone = Drone(args.sysid, frame, trajectory, gimbal[:, 0], gimbal[:, 1], start,
                  mav_type=MAV_TYPES[args.airframe])  # fmt: skip
    count = write_tlog(args.out, frames(drone))
    truth_path = args.truth or f"{args.out}.truth.jsonl"
    write_truth(truth_path, drone)
    print(f"wrote {count} messages over {trajectory.t[-1]:.0f} s to {args.out}; truth {truth_path}")
    return 0


def write_truth(path: str, drone: Drone, period: float = 0.1) -> None:
    """The drone's true pose every `period` seconds, WGS84 and the post's ENU."""
    tr = drone.trajectory
    step = max(1, round(period / (tr.t[1] - tr.t[0]))) if len(tr.t) > 1 else 1
    with open(path, "w") as out:
        for k in range(0, len(tr.t), step):
            lat, lon, alt = drone.frame.to_geodetic(*tr.position[k])
            # Attitudes as MAVLink means them: against the drone's own north and level.
            roll, pitch, yaw = local_level(drone.frame, lat, lon, tr.roll[k], tr.pitch[k],
                                           tr.yaw[k])  # fmt: skip
            _, gimbal_pitch, gimbal_yaw = local_level(drone.frame, lat, lon, 0.0,
                                                      drone.gimbal_pitch[k], drone.gimbal_yaw[k])
            out.write(json.dumps({
                "t": drone.start_utc + float(tr.t[k]), "sysid": drone.sysid,
                "lat": float(lat), "lon": float(lon), "alt": float(alt),
                "enu": tr.position[k].tolist(), "velocity_enu": tr.velocity[k].tolist(),
                "roll": float(roll), "pitch": float(pitch), "yaw": float(yaw),
                "gimbal_pitch": float(gimbal_pitch), "gimbal_yaw": float(gimbal_yaw),
                "battery": float(tr.battery[k]),
            }) + "\n")  # fmt: skip


def scenario(argv: list[str]) -> int:
    from sim_hw.scenario import epoch_arg, load_config
    from sim_hw.truth import write_scenario

    parser = argparse.ArgumentParser(prog="python -m sim_hw scenario")
    parser.add_argument("config", help="configs/scenarios/NAME.toml")
    parser.add_argument("--out", required=True, help="folder for the tlogs and truth.jsonl")
    parser.add_argument("--epoch", type=epoch_arg, help="UTC s (or 'now') of scenario time 0, "
                        "instead of the file's start: for a live run")  # fmt: skip
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.epoch is not None:
        config = config.starting_at(args.epoch)
    truth_path = write_scenario(config, args.out)
    print(f"{config.name}: {len(config.drones)} drone tlogs and {truth_path} in {args.out}")
    return 0


def replay(argv: list[str]) -> int:
    from sim_hw.replay import main as replay_main

    return replay_main(argv)


def camera(argv: list[str]) -> int:
    from sim_hw.camera.cli import main as camera_main

    return camera_main(argv)


def klv_video(argv: list[str]) -> int:
    from sim_hw.klv_video import main as klv_video_main

    return klv_video_main(argv)


COMMANDS = {"generate": generate, "scenario": scenario, "replay": replay, "camera": camera,
            "klv-video": klv_video}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm_as_on_ctrl_c()  # each command ends on Ctrl-C cleanly; SIGTERM too
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m sim_hw {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
