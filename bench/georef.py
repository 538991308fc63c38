"""Georeferencing benchmark: `python -m bench georef [--json] [--quick]`.

1. Throughput: pixels per second of `Georeferencer.locate` (ground point and
   covariance, one frame of N pixels per call, warm kernels, median of
   repeats) for a frame of 100 pixels (a busy frame's detections) and of
   10,000, against a plain NumPy vectorised version of the same algorithm
   timed in the same process; the two must agree, and their largest
   differences are reported.
2. Accuracy: the CEP (median horizontal error) of georeferenced image centres
   against the simulator's truth. True poses come from a simulated multirotor
   loitering at 100 m over the post's ground (`sim_hw.flight`); the camera
   looks 0, 30, 45 or 60 deg off nadir at a random bearing; the true centre is
   where the simulator puts it (`sim_hw.flight.ground_point`). Each pose is
   perturbed by one draw of the default `ErrorBudget` (autopilot tilt and
   heading, gimbal pointing, GNSS, altitude, time sync with the drone's
   velocity; no pixel error: the centre is exact), the centre georeferenced
   from the perturbed pose and compared with the truth. Also reported: the CEP
   that the computed covariances predict (one draw from each N(0, R)), and
   the largest error with no perturbation at all (the two models' difference,
   once the simulator's gimbal angles, which it sets against the post's level,
   are turned to the drone's own level as MAVLink means them).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.spatial.transform import Rotation

from bench import results
from edge.georef import Camera, ErrorBudget, Georeferencer, Pose, pose_scenarios, warm
from sim_hw.flight import MULTIROTOR, fly, ground_point, loiter_waypoints
from sim_hw.telemetry import local_level
from sim_hw.terrain import ground_up
from wire.geo import (
    WGS84_A,
    WGS84_B,
    EnuFrame,
    ecef_to_enu_rotation,
    ecef_to_geodetic,
    geodetic_to_ecef,
)

POST = EnuFrame(22.694, 14.180, 700.0)
CAMERA = Camera.from_hfov(math.radians(60.0), 1280, 720)
ALTITUDE = 100.0
OFF_NADIR_DEG = (0, 30, 45, 60)
CEP_TARGET_NADIR = 2.5  # m


# --- 1. throughput ----------------------------------------------------------------------


def numpy_locate(georef: Georeferencer, pose: Pose, u, v):
    """The same algorithm as the Numba kernel, vectorised over every (scenario, pixel) pair."""
    budget = georef.budget
    positions, rotations = pose_scenarios(pose, budget)
    offsets = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]  # the pixel itself, then +/- sigma
    rays = [CAMERA.rays(u + du * budget.pixel, v + dv * budget.pixel) for du, dv in offsets]

    def ground(k, ray, exact=False):
        directions = ray @ rotations[k].T
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return numpy_hit_ground(positions[k], directions, georef.ground_alt, exact)

    nominal = ground(0, rays[0], exact=True)
    columns = [ground(k, rays[0]) - ground(k + 1, rays[0]) for k in range(1, len(positions), 2)]
    columns += [ground(0, rays[1]) - ground(0, rays[2]), ground(0, rays[3]) - ground(0, rays[4])]
    frame = georef.frame
    enu_from_ecef = ecef_to_enu_rotation(frame.lat, frame.lon)
    jacobian = np.stack([c @ enu_from_ecef[:2].T / 2.0 for c in columns], axis=2)  # (N, 2, k)
    covariance = jacobian @ jacobian.transpose(0, 2, 1)
    enu = (nominal - geodetic_to_ecef(frame.lat, frame.lon, frame.alt)) @ enu_from_ecef.T
    return enu, covariance


def numpy_hit_ground(origin, directions, ground_alt, exact):
    """The grown ellipsoid's quadratic, then (exact) one Newton step, as `edge.georef`."""
    a, b = WGS84_A + ground_alt, WGS84_B + ground_alt
    stretch = np.array([1.0, 1.0, a / b])
    o, d = origin * stretch, directions * stretch
    qa, qb, qc = np.sum(d * d, axis=1), d @ o, o @ o - a * a
    discriminant = qb * qb - qa * qc
    hit = (qc > 0) & (qb < 0) & (discriminant >= 0)
    s = np.where(hit, qc / (np.sqrt(np.where(hit, discriminant, 0.0)) - qb), np.nan)
    if exact:
        points = origin + s[:, None] * directions
        height = ecef_to_geodetic(*points.T)[2]
        normals = points / np.array([a * a, a * a, b * b])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        s -= (height - ground_alt) / np.sum(directions * normals, axis=1)
    return origin + s[:, None] * directions


def throughput(batch: int, repeats: int) -> dict:
    rng = np.random.default_rng(batch)
    georef = Georeferencer(CAMERA, POST)
    lat, lon, _ = POST.to_geodetic(600.0, 900.0, 0.0)
    pose = Pose(float(lat), float(lon), POST.alt + ALTITUDE, 0.05, -0.1, 0.8,
                0.0, math.radians(-45.0), 1.2, "earth", (6.0, 9.0, 0.0))  # fmt: skip
    u, v = rng.uniform(0, CAMERA.width, batch), rng.uniform(0, CAMERA.height, batch)

    ours = georef.locate(pose, u, v)
    theirs = numpy_locate(georef, pose, u, v)
    ours_s = median_seconds(lambda: georef.locate(pose, u, v), repeats)
    numpy_s = median_seconds(lambda: numpy_locate(georef, pose, u, v), repeats)
    return {
        "pixels_per_frame": batch,
        "numba_px_per_s": batch / ours_s,
        "numpy_px_per_s": batch / numpy_s,
        "speedup_vs_numpy": numpy_s / ours_s,
        "max_position_difference_m": float(np.nanmax(np.abs(ours.enu - theirs[0]))),
        "max_covariance_difference_rel": relative_difference(ours.R, theirs[1]),
        "located": int(ours.ok.sum()),
    }


def relative_difference(ours, theirs) -> float:
    """Largest |ours - theirs| of each matrix, over its largest entry; the worst matrix."""
    scale = np.abs(theirs).max(axis=(1, 2))
    return float(np.nanmax(np.abs(ours - theirs).max(axis=(1, 2)) / scale))


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# --- 2. accuracy against the simulator --------------------------------------------------


def loiter_poses(duration: float):
    """Samples of a multirotor loitering at 100 m: (ENU position, ENU velocity), cruise only."""
    trajectory = fly(MULTIROTOR, loiter_waypoints((800.0, 1200.0), 250.0, ALTITUDE), duration)
    cruising = np.abs(trajectory.position[:, 2] - ALTITUDE) < 0.5
    return trajectory.position[cruising], trajectory.velocity[cruising]


def centre_errors(off_nadir_deg: float, draws: int, rng, budget: ErrorBudget, flight) -> dict:
    positions, velocities = flight
    georef = Georeferencer(CAMERA, POST, budget=budget)
    centre = ([CAMERA.width / 2.0], [CAMERA.height / 2.0])
    pitch = -math.radians(90.0 - off_nadir_deg)
    errors, predicted, residuals = [], [], []
    for k in rng.integers(0, len(positions), draws):
        position, velocity = positions[k], velocities[k]
        bearing = rng.uniform(0, 2 * math.pi)
        truth = ground_point(position, pitch, bearing, lambda e, n: ground_up(POST, e, n))
        lat, lon, alt = (float(x) for x in POST.to_geodetic(*position))
        _, local_pitch, local_yaw = local_level(POST, lat, lon, 0.0, pitch, bearing)
        velocity_ned = (velocity[1], velocity[0], -velocity[2])
        exact = Pose(lat, lon, alt, 0.0, 0.0, 0.0, 0.0, local_pitch, local_yaw, "earth",
                     velocity_ned)  # fmt: skip
        if len(residuals) < 200:
            residuals.append(horizontal(georef.locate(exact, *centre).z[0] - truth[:2]))
        got = georef.locate(perturbed(exact, budget, rng), *centre)
        errors.append(horizontal(got.z[0] - truth[:2]))
        predicted.append(horizontal(rng.multivariate_normal(np.zeros(2), got.R[0])))
    return {
        "off_nadir_deg": off_nadir_deg,
        "draws": draws,
        "cep_m": float(np.median(errors)),
        "p95_m": float(np.percentile(errors, 95)),
        "cep_predicted_by_R_m": float(np.median(predicted)),
        "max_error_unperturbed_m": float(np.max(residuals)),
    }


def perturbed(pose: Pose, budget: ErrorBudget, rng) -> Pose:
    """The pose as the drone would report it, off by one draw of the error budget."""
    tilt = rng.normal(0, 1, 3) * [budget.tilt, budget.tilt, budget.heading]
    gimbal = Rotation.from_euler("ZYX", [pose.gimbal_yaw, pose.gimbal_pitch, pose.gimbal_roll])
    # The gimbal levels itself on the autopilot's attitude, so that error turns it too.
    reported = Rotation.from_rotvec(tilt) * gimbal * Rotation.from_rotvec(
        rng.normal(0, budget.gimbal, 3))  # fmt: skip
    yaw, pitch, roll = reported.as_euler("ZYX")
    dt = rng.normal(0, budget.time_sync)
    north, east = rng.normal(0, budget.gnss_horizontal, 2) + np.array(pose.velocity_ned[:2]) * dt
    up = rng.normal(0, budget.altitude) - pose.velocity_ned[2] * dt
    lat, lon, alt = EnuFrame(pose.lat, pose.lon, pose.alt).to_geodetic(east, north, up)
    return Pose(float(lat), float(lon), float(alt), pose.roll, pose.pitch, pose.yaw,
                roll, pitch, yaw, pose.gimbal_frame, pose.velocity_ned)  # fmt: skip


def horizontal(d) -> float:
    return math.hypot(d[0], d[1])


# --- report -----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench georef", description=__doc__)
    results.add_json_option(parser, "georef")
    parser.add_argument("--quick", action="store_true", help="fewer draws and repeats")
    args = parser.parse_args(argv)
    draws, repeats = (1000, 3) if args.quick else (10_000, 15)

    warm()
    budget = ErrorBudget()
    flight = loiter_poses(400.0)
    rng = np.random.default_rng(2026)
    report = {
        **results.header("georef", argv, "numpy", "numba"),
        "camera": {"hfov_deg": 60.0, "width": CAMERA.width, "height": CAMERA.height},
        "error_budget": {
            "tilt_deg": math.degrees(budget.tilt), "heading_deg": math.degrees(budget.heading),
            "gimbal_deg": math.degrees(budget.gimbal), "pixel_px": budget.pixel,
            "altitude_m": budget.altitude, "gnss_horizontal_m": budget.gnss_horizontal,
            "time_sync_s": budget.time_sync,
        },  # fmt: skip
        "throughput": [throughput(batch, repeats) for batch in (100, 10_000)],
        "accuracy": {
            "altitude_m": ALTITUDE,
            "cep_target_nadir_m": CEP_TARGET_NADIR,
            "by_angle": [centre_errors(a, draws, rng, budget, flight) for a in OFF_NADIR_DEG],
        },
    }
    results.publish(format_report(report), report, "georef" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    lines = [
        "georeferencing throughput (ground point + covariance, warm, median per frame)",
        f"  {'px/frame':>8}  {'numba px/s':>12}  {'numpy px/s':>12}  {'ratio':>6}  "
        f"{'max |d pos| m':>13}  {'max |d R| rel':>13}",
    ]
    for row in report["throughput"]:
        lines.append(
            f"  {row['pixels_per_frame']:>8}  {row['numba_px_per_s']:>12,.0f}  "
            f"{row['numpy_px_per_s']:>12,.0f}  {row['speedup_vs_numpy']:>6.1f}  "
            f"{row['max_position_difference_m']:>13.1e}  "
            f"{row['max_covariance_difference_rel']:>13.1e}"
        )
    accuracy = report["accuracy"]
    lines += [
        "",
        f"image-centre error against simulator truth at {accuracy['altitude_m']:.0f} m "
        f"(nadir target CEP <= {accuracy['cep_target_nadir_m']} m)",
        f"  {'off nadir':>9}  {'draws':>6}  {'CEP m':>6}  {'p95 m':>6}  "
        f"{'CEP from R m':>12}  {'unperturbed max m':>17}",
    ]
    for row in accuracy["by_angle"]:
        lines.append(
            f"  {row['off_nadir_deg']:>7} °  {row['draws']:>6}  {row['cep_m']:>6.2f}  "
            f"{row['p95_m']:>6.2f}  {row['cep_predicted_by_R_m']:>12.2f}  "
            f"{row['max_error_unperturbed_m']:>17.1e}"
        )
    return "\n".join(lines)

