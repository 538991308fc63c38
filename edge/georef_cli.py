"""`python -m edge georef ...`: where one pixel lands on the ground, and how sure that is.

A field tool (and a test hook): the pose goes in as MAVLink reports it —
ATTITUDE's roll, pitch, yaw in radians; the gimbal's angles in degrees as
MOUNT_ORIENTATION gives them (pitch -90 looks straight down), in the earth
frame (yaw from north), the vehicle frame (yaw from the vehicle's heading) or
the body frame (a camera fixed to the airframe); pixel (0, 0) is the top-left
corner of the image. It prints the ground point (lat, lon, alt) and its 2x2
east/north covariance in m², in the ENU frame anchored on the ground below the
drone, under the default consumer-grade `ErrorBudget`.

Exit status: 0 with a ground point, 1 when the pixel has none (the reason is
printed), 2 for arguments that do not parse.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from edge.georef import GIMBAL_FRAMES, OK, STATUS_NAMES, Camera, Georeferencer, Pose
from wire.geo import EnuFrame


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge georef",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    add = parser.add_argument
    add("--lat", type=float, required=True, help="drone latitude, deg (WGS84)")
    add("--lon", type=float, required=True, help="drone longitude, deg")
    add("--alt", type=float, required=True, help="drone height above the ellipsoid, m")
    add("--roll", type=float, default=0.0, help="vehicle roll, rad (ATTITUDE)")
    add("--pitch", type=float, default=0.0, help="vehicle pitch, rad")
    add("--yaw", type=float, default=0.0, help="vehicle yaw, rad from north")
    add("--gimbal-roll", type=float, default=0.0, help="deg")
    add("--gimbal-pitch", type=float, default=-90.0, help="deg, -90 straight down")
    add("--gimbal-yaw", type=float, default=0.0, help="deg")
    add("--gimbal-frame", choices=GIMBAL_FRAMES, default="earth")
    add("--hfov", type=float, required=True, help="horizontal field of view, deg")
    add("--width", type=int, required=True, help="image width, px")
    add("--height", type=int, required=True, help="image height, px")
    add("--u", type=float, required=True, help="pixel column, px from the left edge")
    add("--v", type=float, required=True, help="pixel row, px from the top edge")
    add("--ground-alt", type=float, required=True, help="ground height above the ellipsoid, m")
    add("--velocity", type=float, nargs=3, default=(0.0, 0.0, 0.0),
        metavar=("VN", "VE", "VD"), help="drone velocity, m/s NED (for the time-sync error)")
    add("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        camera = Camera.from_hfov(math.radians(args.hfov), args.width, args.height)
        pose = Pose(
            args.lat, args.lon, args.alt, args.roll, args.pitch, args.yaw,
            math.radians(args.gimbal_roll), math.radians(args.gimbal_pitch),
            math.radians(args.gimbal_yaw), args.gimbal_frame, tuple(args.velocity),
        )  # fmt: skip
        # The covariance's east/north axes: those of the ground below the drone.
        frame = EnuFrame(args.lat, args.lon, args.ground_alt)
    except ValueError as error:
        print(f"georef: {error}", file=sys.stderr)
        return 2
    georef = Georeferencer(camera, frame, args.ground_alt)
    measurements = georef.locate(pose, [args.u], [args.v])
    status = int(measurements.status[0])
    result = {"status": STATUS_NAMES[status], "lat": None, "lon": None, "alt": None,
              "covariance_enu_m2": None}  # fmt: skip
    if status == OK:
        lat, lon, alt = georef.to_geodetic(measurements)[0]
        result.update(lat=float(lat), lon=float(lon), alt=float(alt),
                      covariance_enu_m2=measurements.R[0].tolist())  # fmt: skip
    print(json.dumps(result) if args.json else _text(result))
    return 0 if status == OK else 1


def _text(result: dict) -> str:
    if result["status"] != "ok":
        return f"no ground point: {result['status']}"
    (ee, en), (_, nn) = result["covariance_enu_m2"]
    lat, lon, alt = result["lat"], result["lon"], result["alt"]
    return "\n".join([
        f"ground point  lat {lat:.8f}  lon {lon:.8f}  alt {alt:.3f} m",
        f"covariance    [[{ee:.4g}, {en:.4g}], [{en:.4g}, {nn:.4g}]] m² (east, north)",
        f"one sigma     east {math.sqrt(ee):.2f} m  north {math.sqrt(nn):.2f} m",
    ])  # fmt: skip
