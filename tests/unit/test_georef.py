"""edge.georef against references that share none of its code.

- geometry: a brute-force ray tracer written here (scipy rotations from Euler
  axes, pyproj for every geodetic conversion, bisection along the ray), and the
  inverse direction through OpenCV's own distortion model (cv2.projectPoints);
- covariance: Monte Carlo draws of the error budget, NEES against chi-square;
- conventions: the simulator's CAMERA_FOV_STATUS, read back with pymavlink;
- the command line, and bad input.
"""

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pymavlink import mavutil
from pyproj import Transformer
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

from edge.georef import (
    BAD_INPUT,
    NO_GROUND,
    OK,
    UNSTABLE,
    Camera,
    ErrorBudget,
    Georeferencer,
    Pose,
    euler_from_quaternion,
)
from edge.tracking import Tracker
from tests.conftest import PROJECT_ROOT
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

POST = EnuFrame(22.694, 14.180, 700.0)
HFOV, WIDTH, HEIGHT = math.radians(60.0), 1280, 720
TO_ECEF = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


# ---------------------------------------------------------------- the reference


def topocentric(frame: EnuFrame) -> Transformer:
    """ECEF -> the frame's ENU, by PROJ."""
    return Transformer.from_pipeline(
        f"+proj=topocentric +ellps=WGS84 +lat_0={frame.lat!r} +lon_0={frame.lon!r} "
        f"+h_0={frame.alt!r}"
    )


def ned_axes(lat, lon):
    """Rows: north, east, down unit vectors at (lat, lon) in ECEF."""
    phi, lam = np.radians(lat), np.radians(lon)
    up = np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    east = np.array([-np.sin(lam), np.cos(lam), 0.0])
    return np.array([np.cross(up, east), east, -up])


def ned_from_camera(pose: Pose) -> Rotation:
    gimbal = Rotation.from_euler("ZYX", [pose.gimbal_yaw, pose.gimbal_pitch, pose.gimbal_roll])
    if pose.gimbal_frame == "earth":
        return gimbal
    if pose.gimbal_frame == "vehicle":
        return Rotation.from_euler("Z", pose.yaw) * gimbal
    return Rotation.from_euler("ZYX", [pose.yaw, pose.pitch, pose.roll]) * gimbal


def pinhole_rays(u, v):
    """Camera-frame (forward, right, down) rays of an ideal camera, pixel (0, 0) a corner."""
    focal = WIDTH / 2 / math.tan(HFOV / 2)
    return np.column_stack([np.ones_like(u), (u - WIDTH / 2) / focal, (v - HEIGHT / 2) / focal])


def brute_force_ground(pose: Pose, rays_camera, ground_alt):
    """ECEF points where the rays reach `ground_alt`, by bisection on pyproj's heights."""
    origin = np.array(TO_ECEF.transform(pose.lon, pose.lat, pose.alt))
    directions = ned_from_camera(pose).apply(rays_camera) @ ned_axes(pose.lat, pose.lon)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def height(s):
        p = origin + s[:, None] * directions
        return TO_ECEF.transform(p[:, 0], p[:, 1], p[:, 2], direction="INVERSE")[2]

    near, far = np.zeros(len(directions)), np.full(len(directions), 10.0)
    for _ in range(30):  # push `far` below the ground
        far = np.where(height(far) > ground_alt, 2 * far, far)
    assert np.all(height(far) < ground_alt), "a test ray does not reach the ground"
    for _ in range(60):
        mid = (near + far) / 2
        above = height(mid) > ground_alt
        near, far = np.where(above, mid, near), np.where(above, far, mid)
    return origin + far[:, None] * directions


def random_pose(rng, gimbal_frame, max_distance=50_000.0):
    """A drone up to `max_distance` from the post, 80-600 m up, looking down at 40-90 deg."""
    distance, bearing = rng.uniform(0, max_distance), rng.uniform(0, 2 * np.pi)
    lat, lon, _ = POST.to_geodetic(distance * np.sin(bearing), distance * np.cos(bearing), 0.0)
    body = gimbal_frame == "body"
    return Pose(
        float(lat), float(lon), POST.alt + rng.uniform(80, 600),
        rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25), rng.uniform(-np.pi, np.pi),
        rng.uniform(-0.1, 0.1), -rng.uniform(np.radians(55 if body else 40), np.pi / 2),
        rng.uniform(-np.pi, np.pi), gimbal_frame,
    )  # fmt: skip


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("gimbal_frame", ["earth", "vehicle", "body"])
def test_pixels_land_where_a_brute_force_ray_tracer_says(gimbal_frame):
    rng = np.random.default_rng(10)
    ground_alt = POST.alt - 35.0  # the ground need not be at the post's height
    georef = Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), POST, ground_alt)
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(0, WIDTH, 7), np.linspace(0, HEIGHT, 5)))
    to_post = topocentric(POST)
    for _ in range(6):
        pose = random_pose(rng, gimbal_frame)
        got = georef.locate(pose, u, v)
        assert np.all(got.status == OK)
        expected = brute_force_ground(pose, pinhole_rays(u, v), ground_alt)
        expected_enu = np.column_stack(to_post.transform(*expected.T))
        assert np.max(np.abs(got.enu - expected_enu)) < 1e-5  # metres
        assert np.array_equal(got.z, got.enu[:, :2])
        assert np.allclose(georef.to_geodetic(got)[:, 2], ground_alt, atol=1e-4)


def test_distorted_pixels_land_on_the_ground_points_they_image():
    distortion = (-0.12, 0.03, 0.001, -0.0005, 0.002)
    camera = Camera.from_hfov(HFOV, WIDTH, HEIGHT, distortion)
    georef = Georeferencer(camera, POST)
    rng = np.random.default_rng(11)
    pose = random_pose(rng, "body", max_distance=5_000.0)
    # Ground points around the drone, imaged forward by OpenCV's own distortion model.
    lat = pose.lat + rng.uniform(-0.01, 0.01, 4000)
    lon = pose.lon + rng.uniform(-0.01, 0.01, 4000)
    ground = np.column_stack(TO_ECEF.transform(lon, lat, np.full(4000, POST.alt)))
    offset_ned = (ground - TO_ECEF.transform(pose.lon, pose.lat, pose.alt)) @ ned_axes(
        pose.lat, pose.lon).T  # fmt: skip
    forward_right_down = ned_from_camera(pose).inv().apply(offset_ned)
    in_front = forward_right_down[:, 0] > 0
    opencv_camera = forward_right_down[in_front][:, [1, 2, 0]]  # x right, y down, z forward
    matrix = np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1.0]])
    pixels = cv2.projectPoints(opencv_camera, np.zeros(3), np.zeros(3), matrix,
                               np.array(distortion))[0].reshape(-1, 2)  # fmt: skip
    inside = (pixels[:, 0] > 0) & (pixels[:, 0] < WIDTH) & (pixels[:, 1] > 0) & (
        pixels[:, 1] < HEIGHT)  # fmt: skip
    assert inside.sum() > 100

    got = georef.locate(pose, pixels[inside, 0], pixels[inside, 1])
    expected = np.column_stack(topocentric(POST).transform(*ground[in_front][inside].T))
    assert np.all(got.status == OK)
    assert np.max(np.abs(got.enu - expected)) < 1e-5


def test_camera_information_gives_the_same_camera_as_its_field_of_view():
    # What the simulator's CAMERA_INFORMATION says of its 60 deg, 1280 x 720 camera.
    sensor_width = 2 * 4.4 * math.tan(math.radians(30.0))
    from_sensor = Camera.from_sensor(4.4, sensor_width, sensor_width * 720 / 1280, 1280, 720)
    from_fov = Camera.from_hfov(math.radians(60.0), 1280, 720)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(from_sensor, name) == pytest.approx(getattr(from_fov, name), rel=1e-12)


def test_euler_from_quaternion_matches_scipy():
    rng = np.random.default_rng(12)
    for angles in rng.uniform([-3, -1.5, -3], [3, 1.5, 3], size=(50, 3)):
        x, y, z, w = Rotation.from_euler("ZYX", angles[::-1]).as_quat()
        assert euler_from_quaternion(w, x, y, z) == pytest.approx(tuple(angles), abs=1e-9)


# ---------------------------------------------------------------- covariance


def draw_errors(rng, truth: Pose, budget: ErrorBudget, n: int):
    """n poses as the drone would report them, each off by one draw of the error budget."""
    attitude_error = Rotation.from_rotvec(
        rng.normal(size=(n, 3)) * [budget.tilt, budget.tilt, budget.heading])  # fmt: skip
    gimbal_error = Rotation.from_rotvec(rng.normal(0, budget.gimbal, (n, 3)))
    gimbal = Rotation.from_euler("ZYX", [truth.gimbal_yaw, truth.gimbal_pitch, truth.gimbal_roll])
    vehicle = Rotation.from_euler("ZYX", [truth.yaw, truth.pitch, truth.roll])
    if truth.gimbal_frame == "earth":  # the gimbal levels itself on the autopilot's estimate
        gimbal = attitude_error * gimbal * gimbal_error
        vehicle = Rotation.concatenate([vehicle] * n)
    else:  # body: the autopilot's error turns the vehicle, the mount's the camera on it
        gimbal = gimbal * gimbal_error
        vehicle = attitude_error * vehicle
    gimbal, vehicle = gimbal.as_euler("ZYX"), vehicle.as_euler("ZYX")

    dt = rng.normal(0, budget.time_sync, n)
    north = rng.normal(0, budget.gnss_horizontal, n) + truth.velocity_ned[0] * dt
    east = rng.normal(0, budget.gnss_horizontal, n) + truth.velocity_ned[1] * dt
    down = -rng.normal(0, budget.altitude, n) + truth.velocity_ned[2] * dt
    here = EnuFrame(truth.lat, truth.lon, truth.alt)
    lat, lon, alt = here.to_geodetic(east, north, -down)
    return [
        Pose(lat[k], lon[k], alt[k], *vehicle[k, ::-1], *gimbal[k, ::-1], truth.gimbal_frame,
             truth.velocity_ned)  # fmt: skip
        for k in range(n)
    ]


@pytest.mark.parametrize(
    "gimbal_frame, off_nadir_deg",
    [("earth", 0), ("earth", 30), ("earth", 45), ("earth", 60), ("body", 45)],
)
def test_covariance_is_consistent_with_monte_carlo(gimbal_frame, off_nadir_deg):
    budget = ErrorBudget()
    georef = Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), POST, budget=budget)
    lat, lon, _ = POST.to_geodetic(400.0, -250.0, 0.0)
    # In the body frame the off-nadir angle is the gimbal's plus the vehicle's tilt.
    roll, pitch = (0.15, -0.08) if gimbal_frame == "body" else (0.0, 0.0)
    truth = Pose(float(lat), float(lon), POST.alt + 100.0, roll, pitch, 0.9,
                 0.0, -math.radians(90 - off_nadir_deg), 0.3, gimbal_frame,
                 velocity_ned=(8.0, -9.0, 0.5))  # fmt: skip
    centre = (WIDTH / 2, HEIGHT / 2)
    true_point = georef.locate(truth, [centre[0]], [centre[1]]).z[0]

    n = 10_000
    rng = np.random.default_rng(13 + off_nadir_deg)
    pixels = np.array(centre) + rng.normal(0, budget.pixel, (n, 2))
    nees = np.empty(n)
    for k, pose in enumerate(draw_errors(rng, truth, budget, n)):
        got = georef.locate(pose, pixels[k, :1], pixels[k, 1:])
        error = got.z[0] - true_point
        nees[k] = error @ np.linalg.solve(got.R[0], error)
    # n times the mean NEES is chi-square with 2n degrees of freedom.
    low, high = chi2.ppf([0.025, 0.975], 2 * n) / n
    assert low < nees.mean() < high
    # And its spread is right too, not only its mean: 95% inside the 95% gate.
    assert np.mean(nees < chi2.ppf(0.95, 2)) == pytest.approx(0.95, abs=0.01)


# ---------------------------------------------------------------- the simulator


def read_camera_centres(path):
    """(HOME_POSITION, [(ATTITUDE, GLOBAL_POSITION_INT, GIMBAL_..., CAMERA_FOV_STATUS)]).

    The simulator sends all four from one truth sample with one time_boot_ms.
    """
    wanted = ["HOME_POSITION", "ATTITUDE", "GLOBAL_POSITION_INT",
              "GIMBAL_DEVICE_ATTITUDE_STATUS", "CAMERA_FOV_STATUS"]  # fmt: skip
    connection = mavutil.mavlink_connection(str(path), dialect="common")
    latest, samples = {}, []
    while (message := connection.recv_match(type=wanted)) is not None:
        latest[message.get_type()] = message
        if message.get_type() == "CAMERA_FOV_STATUS":
            pose = [latest.get(name) for name in wanted[1:4]]
            if all(m is not None and m.time_boot_ms == message.time_boot_ms for m in pose):
                samples.append((*pose, message))
    return latest["HOME_POSITION"], samples


def test_simulator_camera_centre_matches_our_projection(tmp_path):
    tlog = tmp_path / "flight.tlog"
    subprocess.run(
        [sys.executable, "-m", "sim_hw", "generate", "--out", str(tlog), "--duration", "60",
         "--gimbal-target", "800", "1200", "--start", "1767225600"],
        cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    home, samples = read_camera_centres(tlog)
    post = EnuFrame(home.latitude * 1e-7, home.longitude * 1e-7, home.altitude * 1e-3)
    georef = Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), post)

    unknown = 2**31 - 1  # CAMERA_FOV_STATUS's "no ground point"
    misses = []
    for attitude, position, gimbal, fov in samples:
        lat, lon, alt = position.lat * 1e-7, position.lon * 1e-7, position.alt * 1e-3
        w, x, y, z = gimbal.q
        yaw, pitch, roll = Rotation.from_quat([x, y, z, w]).as_euler("ZYX")
        pose = Pose(lat, lon, alt, attitude.roll, attitude.pitch, attitude.yaw,
                    roll, pitch, yaw, "earth")  # fmt: skip
        got = georef.locate(pose, [WIDTH / 2], [HEIGHT / 2])
        if fov.lat_image == unknown:
            assert got.status[0] != OK
            continue
        if got.status[0] != OK:
            continue  # on the ground at take-off, looking level: range unbounded
        sim = post.from_geodetic(fov.lat_image * 1e-7, fov.lon_image * 1e-7, fov.alt_image * 1e-3)
        misses.append(math.hypot(got.z[0, 0] - sim[0], got.z[0, 1] - sim[1]))
    assert len(misses) > 200
    # Positions travel as whole 1e-7 degrees (about 1.1 cm) and altitudes as whole
    # millimetres, each truncated: the drone's, then the centre's; at these grazing
    # views a millimetre of height moves the centre a centimetre along the ground.
    assert max(misses) < 0.05


# ---------------------------------------------------------------- command line


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "edge", "georef", *arguments, "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


CLI_CAMERA = ["--hfov", "60", "--width", "1280", "--height", "720"]


def test_cli_prints_the_ground_point_and_covariance():
    pose = Pose(22.70, 14.19, 812.0, 0.05, -0.1, 0.4, 0.0, math.radians(-50),
                math.radians(25), "vehicle")  # fmt: skip
    result = run_cli(
        "--lat", "22.70", "--lon", "14.19", "--alt", "812", "--roll", "0.05", "--pitch", "-0.1",
        "--yaw", "0.4", "--gimbal-roll", "0", "--gimbal-pitch", "-50", "--gimbal-yaw", "25",
        "--gimbal-frame", "vehicle", *CLI_CAMERA, "--u", "100", "--v", "650",
        "--ground-alt", "690",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "ok"
    expected = brute_force_ground(pose, pinhole_rays(np.array([100.0]), np.array([650.0])), 690.0)
    lon, lat, alt = TO_ECEF.transform(*expected[0], direction="INVERSE")
    assert (out["lat"], out["lon"]) == pytest.approx((lat, lon), abs=1e-8)  # about 1 mm
    assert out["alt"] == pytest.approx(690.0, abs=1e-4)
    covariance = np.array(out["covariance_enu_m2"])
    assert np.allclose(covariance, covariance.T) and np.all(np.linalg.eigvalsh(covariance) > 0)


def test_cli_nadir_covariance_is_gnss_plus_tilt():
    result = run_cli("--lat", "22.7", "--lon", "14.19", "--alt", "800", *CLI_CAMERA,
                     "--u", "640", "--v", "360", "--ground-alt", "700")  # fmt: skip
    out = json.loads(result.stdout)
    assert (out["lat"], out["lon"]) == pytest.approx((22.7, 14.19), abs=1e-9)
    # Straight down from 100 m: GNSS, plus autopilot tilt and gimbal pointing
    # (0.5 deg each) turning the ray, plus 2 px; heading turns the image about its centre.
    b = ErrorBudget()
    expected = b.gnss_horizontal**2 + (100 * b.tilt) ** 2 + (100 * b.gimbal) ** 2 + (
        100 * b.pixel / (640 / math.tan(HFOV / 2))) ** 2  # fmt: skip
    assert np.allclose(np.diag(out["covariance_enu_m2"]), expected, rtol=1e-3)


def test_cli_refuses_a_ray_above_the_horizon_and_bad_arguments():
    result = run_cli("--lat", "22.7", "--lon", "14.19", "--alt", "800", "--gimbal-pitch", "5",
                     *CLI_CAMERA, "--u", "640", "--v", "360", "--ground-alt", "700")  # fmt: skip
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"status": "no_ground", "lat": None, "lon": None,
                                         "alt": None, "covariance_enu_m2": None}  # fmt: skip
    result = run_cli("--lat", "22.7", "--lon", "14.19", "--alt", "800", "--hfov", "200",
                     "--width", "1280", "--height", "720", "--u", "1", "--v", "1",
                     "--ground-alt", "700")  # fmt: skip
    assert result.returncode == 2 and "field of view" in result.stderr


# ---------------------------------------------------------------- bad input


@pytest.fixture
def georef():
    return Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), POST)


def level_pose(alt=POST.alt + 120.0, gimbal_pitch_deg=-45.0, **changes):
    values = dict(lat=POST.lat, lon=POST.lon, alt=alt, roll=0.0, pitch=0.0, yaw=0.0,
                  gimbal_roll=0.0, gimbal_pitch=math.radians(gimbal_pitch_deg), gimbal_yaw=0.0)
    values.update(changes)
    return Pose(**values)


def test_rays_at_or_above_the_horizon_are_refused_and_counted(georef):
    # Looking level: the top half of the image is sky, the centre row is the horizon.
    v = np.array([0.0, 200.0, 360.0, 372.0, 720.0])
    got = georef.locate(level_pose(gimbal_pitch_deg=0.0), np.full(5, 640.0), v)
    assert list(got.status[:3]) == [NO_GROUND] * 3
    assert np.all(np.isnan(got.z[:3])) and np.all(np.isnan(got.R[:3]))
    # 12 px below the centre is 0.62 deg down: 11 km away, but half a degree of
    # tilt would lift it over the horizon: no bounded covariance, refused as unstable.
    assert got.status[3] == UNSTABLE and np.isnan(got.z[3]).all()
    assert got.status[4] == OK and np.all(np.isfinite(got.R[4]))
    # Past the Earth's curve: 0.2 deg down from 120 m misses the ground (the dip is 0.35 deg).
    grazing = georef.locate(level_pose(gimbal_pitch_deg=-0.2), [640.0], [360.0])
    assert grazing.status[0] == NO_GROUND
    c = georef.counters
    assert (c.pixels, c.located, c.rejected_no_ground, c.rejected_unstable) == (6, 1, 4, 1)


def test_non_finite_and_off_image_pixels_are_refused_without_touching_the_others(georef):
    pose = level_pose()
    clean = georef.locate(pose, [100.0, 700.0], [600.0, 500.0])
    mixed = georef.locate(pose, [np.nan, 100.0, np.inf, 700.0, 1e9, -0.5],
                          [10.0, 600.0, 10.0, 500.0, 10.0, 10.0])  # fmt: skip
    assert list(mixed.status) == [BAD_INPUT, OK, BAD_INPUT, OK, BAD_INPUT, BAD_INPUT]
    assert np.array_equal(mixed.z[[1, 3]], clean.z) and np.array_equal(mixed.R[[1, 3]], clean.R)
    assert georef.counters.rejected_bad_input == 4


@pytest.mark.parametrize("bad", [dict(roll=np.nan), dict(lat=np.inf), dict(gimbal_yaw=np.nan),
                                 dict(alt=POST.alt - 5.0), dict(alt=POST.alt)])  # fmt: skip
def test_a_bad_pose_refuses_its_whole_frame(georef, bad):
    got = georef.locate(level_pose(**bad), [640.0, 10.0], [360.0, 700.0])
    assert list(got.status) == [BAD_INPUT, BAD_INPUT]
    assert np.all(np.isnan(got.z)) and np.all(np.isnan(got.R))
    assert georef.counters.rejected_bad_input == 2


def test_misuse_is_an_error_not_a_silent_answer(georef):
    with pytest.raises(ValueError, match="gimbal_frame"):
        level_pose(gimbal_frame="gimbal")
    with pytest.raises(ValueError, match="differ in length"):
        georef.locate(level_pose(), [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="altitude"):
        ErrorBudget(altitude=-1.0)
    empty = georef.locate(level_pose(), [], [])
    assert empty.z.shape == (0, 2) and empty.R.shape == (0, 2, 2)


def test_measurements_are_what_the_tracker_takes(georef):
    tracker = Tracker()
    pose = level_pose()
    for k in range(3):
        got = georef.locate(pose, [640.0, np.nan, 300.0], [360.0, 1.0, 500.0])
        tracker.update(float(k), got.z, got.R)
    # The tracker used the good rows and counted the refused one as non-finite.
    assert tracker.counters.rejected_non_finite == 3
    assert tracker.counters.rejected_covariance == 0
    assert len(tracker.tracks().ids) == 2


# ---------------------------------------------------------------- the camera's footprint


@pytest.mark.parametrize("gimbal_frame", ["earth", "vehicle", "body"])
def test_the_footprint_corners_are_where_the_corner_rays_meet_the_ground(gimbal_frame):
    rng = np.random.default_rng(18)
    ground_alt = POST.alt - 20.0
    georef = Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), POST, ground_alt)
    corners_u, corners_v = np.array([0.0, WIDTH, WIDTH, 0.0]), np.array([0.0, 0.0, HEIGHT, HEIGHT])
    to_geodetic = TO_ECEF.transform
    for _ in range(5):
        pose = random_pose(rng, gimbal_frame)
        footprint = georef.footprint(pose)
        expected = brute_force_ground(pose, pinhole_rays(corners_u, corners_v), ground_alt)
        lon, lat, _ = to_geodetic(*expected.T, direction="INVERSE")
        assert len(footprint) == 4 and None not in footprint
        got = np.array(footprint)
        # 1e-9 deg is 0.1 mm on the ground
        assert np.max(np.abs(got - np.column_stack([lon, lat]))) < 1e-9
        # Top-left, top-right, bottom-right, bottom-left go round the image one way: the
        # ground quadrilateral is traced the same way round (a camera does not mirror).
        east, north, _ = POST.from_geodetic(got[:, 1], got[:, 0], np.full(4, ground_alt))
        area = 0.5 * np.sum(east * np.roll(north, -1) - np.roll(east, -1) * north)
        assert area < 0  # clockwise seen from above, as the image's corners are on screen


def test_a_footprint_corner_above_the_horizon_is_none():
    georef = Georeferencer(Camera.from_hfov(HFOV, WIDTH, HEIGHT), POST)
    # Looking 10 degrees below the horizon with a 34-degree vertical view: the top edge is sky.
    pose = Pose(POST.lat, POST.lon, POST.alt + 200.0, 0.0, 0.0, 0.3, 0.0, math.radians(-10.0),
                0.0, "earth")  # fmt: skip
    footprint = georef.footprint(pose)
    assert footprint[0] is None and footprint[1] is None
    expected = brute_force_ground(pose, pinhole_rays(np.array([WIDTH, 0.0]),
                                                     np.array([HEIGHT, HEIGHT])), POST.alt)
    lon, lat, _ = TO_ECEF.transform(*expected.T, direction="INVERSE")
    assert np.array(footprint[2:]) == pytest.approx(np.column_stack([lon, lat]), abs=1e-9)
    # A drone on the ground sees no footprint at all.
    grounded = Pose(POST.lat, POST.lon, POST.alt - 1.0, 0, 0, 0, 0, -math.pi / 2, 0, "earth")
    assert georef.footprint(grounded) == [None] * 4
