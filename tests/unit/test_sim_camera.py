"""The simulated cameras against references that share none of their code.

- geometry: each visible target's foot pixel, georeferenced by the edge's own
  camera model (`edge.georef`, which traces rays to the ellipsoid), lands on the
  target's true ground point; the image centre lands where the flight model's
  boresight meets the ground (`sim_hw.flight.ground_point`);
- sizes: seen straight down, boxes are the metric sizes the issue gives over
  the ground sampling distance;
- images: deterministic per seed, thermal people warmer than sand at night and
  cooler by day, occluders hide what is behind them;
- outputs: the video reads back with OpenCV, one sidecar line per frame; the
  live MJPEG stream is read by cv2.VideoCapture over a real socket;
- bad input is refused with a clear message.
"""

import json
import math
import socket
import threading
import time
from dataclasses import asdict

import cv2
import numpy as np
import pytest

from edge.georef import Camera, Georeferencer, Pose
from sim_hw.__main__ import main as sim_main
from sim_hw.camera import (
    CameraPose,
    CameraRenderer,
    CameraSpec,
    DronePoses,
    mast_pose,
    origin_of,
    render_drone_camera,
    render_mast_camera,
)
from sim_hw.camera.cli import stream
from sim_hw.camera.mjpeg import MjpegServer
from sim_hw.camera.scene import Occluder
from sim_hw.flight import ground_point
from sim_hw.scenario import WarmGroundConfig, ground_targets, load_config, to_enu, warm_spots
from sim_hw.terrain import ground_up
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.unit

SMALL = PROJECT_ROOT / "configs" / "scenarios" / "small.toml"
WIDTH, HEIGHT = 1280, 720
TRANSIT_S = 85.0  # the small scenario's drone sees the targets on its way out, not once loitering
# The sizes, seen from above: across x along the direction of travel, m.
METRIC_SIZE = {"person": (0.5, 0.3), "vehicle": (1.8, 4.5), "animal": (0.8, 2.5)}


@pytest.fixture(scope="module")
def config():
    return load_config(SMALL)


@pytest.fixture(scope="module")
def poses(config):
    return DronePoses(config, 1)


@pytest.fixture(scope="module")
def transit(config):
    """EO frames once a second while the drone flies out, and the edge's georeferencer."""
    frames = list(render_drone_camera(config, 1, CameraSpec(fps=1.0), 0.0, TRANSIT_S))
    camera = Camera.from_hfov(math.radians(60.0), WIDTH, HEIGHT)
    return frames, Georeferencer(camera, origin_of(config))


def test_foot_pixels_georeference_to_the_true_ground_points(transit):
    frames, georef = transit
    checked = 0
    for frame in frames:
        assert frame.image.shape == (HEIGHT, WIDTH, 3) and frame.image.dtype == np.uint8
        if not frame.targets:
            continue
        pose = Pose(**asdict(frame.pose))  # the same fields, the gimbal in the earth frame
        feet = np.array([t.foot_pixel for t in frame.targets])
        located = georef.locate(pose, feet[:, 0], feet[:, 1])
        # From the pad the camera looks level: the edge declines rays that graze the ground.
        ok = located.ok
        truth = np.array([t.ground_enu for t in frame.targets])
        assert np.abs(located.z[ok] - truth[ok]).max(initial=0.0) < 0.03
        latlon = georef.to_geodetic(located)[ok, :2]
        assert np.abs(latlon - np.array([t.ground_point for t in frame.targets])[ok]).max(
            initial=0.0) < 1e-6  # fmt: skip
        for target in frame.targets:
            x0, y0, x1, y1 = target.box
            u, v = target.foot_pixel
            assert x0 - 2e-3 <= u <= x1 + 2e-3 and y0 - 2e-3 <= v <= y1 + 2e-3  # boxes: 3 decimals
        checked += int(ok.sum())
    assert checked >= 100  # walkers, the stranded pair and camels, over the transit


def test_the_image_centre_sees_the_boresight_ground_point(transit, poses):
    frames, georef = transit
    drone = poses.drone
    trajectory = drone.trajectory
    checked = 0
    for frame in frames:
        flight_t = frame.time - drone.start_utc
        k = int(np.argmin(np.abs(trajectory.t - flight_t)))
        if abs(trajectory.t[k] - flight_t) > 1e-6 or trajectory.position[k, 2] < 5.0:
            continue  # between the flight model's samples, or still on the pad
        expected = ground_point(trajectory.position[k], drone.gimbal_pitch[k],
                                drone.gimbal_yaw[k], lambda e, n: ground_up(drone.frame, e, n))
        centre = georef.locate(Pose(**asdict(frame.pose)), [WIDTH / 2], [HEIGHT / 2])
        if not centre.ok[0]:
            continue  # climbing out the camera looks near level: the edge declines such rays
        assert np.abs(centre.z[0] - expected[:2]).max() < 0.03
        checked += 1
    assert checked >= 50


@pytest.mark.parametrize("target_id", ["walkers-2", "pickup-1", "camels-1"])
def test_boxes_are_metric_size_over_the_ground_sampling_distance(config, target_id):
    """Straight down from 60 m, north up: the box is the footprint's east and north extent
    over the GSD (the top of a 2 m solid is 3 % nearer the camera)."""
    origin = origin_of(config)
    target = next(t for t in ground_targets(config, origin) if t.target_id == target_id)
    t = 100.0  # everyone is on the move in the small scenario
    before, here, after = target.position(np.array([t - 0.5, t, t + 0.5]))
    lat, lon, _ = origin.to_geodetic(here[0], here[1], 0.0)
    height = 60.0
    pose = CameraPose(float(lat), float(lon), origin.alt + height, 0, 0, 0, 0, -math.pi / 2, 0)
    frame = CameraRenderer(config, CameraSpec(), lambda _: pose).render(t)
    seen = {v.target_id: v for v in frame.targets}
    assert target_id in seen
    across, along = METRIC_SIZE[seen[target_id].target_class]
    heading = math.atan2(*(after - before))
    sin, cos = abs(math.sin(heading)), abs(math.cos(heading))
    if target.target_class == "vehicle":  # a rectangle
        east, north = along * sin + across * cos, along * cos + across * sin
    else:  # an ellipse
        east = math.hypot(along * sin, across * cos)
        north = math.hypot(along * cos, across * sin)
    gsd = height / (WIDTH / 2 / math.tan(math.radians(30.0)))
    x0, y0, x1, y1 = seen[target_id].box
    assert (x1 - x0) == pytest.approx(east / gsd, rel=0.2)
    assert (y1 - y0) == pytest.approx(north / gsd, rel=0.2)


def test_eo_frames_repeat_for_a_seed_and_differ_across_seeds(config, poses):
    spec = CameraSpec(width=640, height=360)
    times = [40.0, 40.04, 60.0]
    first = [f.image for f in render_drone_camera(config, 1, spec, 40.0, 0.08, seed=0)]
    again = CameraRenderer(config, spec, poses, seed=0)
    shuffled = {t: again.render(t).image for t in reversed(times)}  # any order, same frames
    assert all(np.array_equal(a, shuffled[t]) for a, t in zip(first, times, strict=False))
    other = CameraRenderer(config, spec, poses, seed=1).render(40.0).image
    assert np.abs(first[0].astype(int) - other).mean() > 5.0
    assert not np.array_equal(first[0], first[1])  # the noise is new each frame


def test_thermal_people_are_warmer_than_the_sand_at_night_and_cooler_by_day(config):
    """The small scenario flies just after midnight (local solar time 00:57)."""
    contrast = {}
    for lighting in ("scene", "day"):
        spec = CameraSpec(mode="thermal", lighting=lighting, fps=0.2)
        for frame in render_drone_camera(config, 1, spec, 45.0, 40.0):
            assert frame.image.shape == (HEIGHT, WIDTH) and frame.image.dtype == np.uint8
            image = frame.image.astype(int)
            for target in frame.targets:
                if target.target_class != "person":
                    continue
                x0, y0, x1, y1 = (int(round(b)) for b in target.box)
                body = image[y0:y1 + 1, x0:x1 + 1]
                around = image[max(y0 - 10, 0):y1 + 11, max(x0 - 10, 0):x1 + 11]
                sand = np.median(around)
                extreme = body.max() if lighting == "scene" else body.min()
                contrast.setdefault(lighting, []).append(extreme - sand)
    assert len(contrast["scene"]) >= 6 and min(contrast["scene"]) > 40
    assert len(contrast["day"]) >= 6 and max(contrast["day"]) < -20
    assert np.median(contrast["day"]) > -np.median(contrast["scene"])  # lower contrast by day


def test_a_target_behind_an_occluder_is_not_in_the_truth(config):
    """A mast 8 m up, 60 m south of the stranded pair; a 5 m rock halfway hides them."""
    origin = origin_of(config)
    stranded = next(t for t in ground_targets(config, origin) if t.target_id == "stranded-1")
    t = 200.0  # long arrived: they stay put
    east, north = stranded.position(np.array([t]))[0]
    mast_lat, mast_lon, _ = origin.to_geodetic(east, north - 60.0, 0.0)
    rock_lat, rock_lon, _ = origin.to_geodetic(east, north - 30.0, 0.0)
    rock = Occluder(float(rock_lat), float(rock_lon), 3.0, 8.0, 5.0, heading_deg=0.0)
    spec = CameraSpec(width=640, height=360, fps=1.0, lighting="day")

    def look(occluders):
        mast = (float(mast_lat), float(mast_lon), 8.0, 0.0, -7.0)
        return next(render_mast_camera(config, *mast, spec, t, 1.0, occluders=occluders))

    clear, hidden = look([]), look([rock])
    assert {"stranded-1", "stranded-2"} <= {v.target_id for v in clear.targets}
    assert not {"stranded-1", "stranded-2"} & {v.target_id for v in hidden.targets}
    # The rock is drawn where the pair stood; the sky shows above the horizon.
    x0, y0, x1, y1 = (int(b) for b in clear.targets[0].box)
    assert np.abs(clear.image[y0:y1 + 1, x0:x1 + 1].astype(int)
                  - hidden.image[y0:y1 + 1, x0:x1 + 1]).mean() > 10  # fmt: skip
    assert clear.image[:20].reshape(-1, 3).std(axis=0).max() < 4.0  # a uniform hazy sky


@pytest.mark.parametrize("mode, suffix", [("eo", "mp4"), ("thermal", "avi")])
def test_the_video_reads_back_with_a_sidecar_line_per_frame(tmp_path, mode, suffix):
    out = tmp_path / f"camera.{suffix}"
    code = sim_main(["camera", str(SMALL), "--sysid", "1", "--mode", mode, "--out", str(out),
                     "--start", "80", "--duration", "1", "--width", "640", "--height", "360"])
    assert code == 0
    capture = cv2.VideoCapture(str(out))
    shapes = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        shapes.append(image.shape)
    capture.release()
    assert shapes == [(360, 640, 3)] * 25
    lines = [json.loads(line) for line in (tmp_path / f"camera.{suffix}.frames.jsonl").open()]
    assert [line["frame"] for line in lines] == list(range(25))
    assert np.diff([line["time"] for line in lines]) == pytest.approx(0.04, abs=1e-5)
    Pose(**lines[0]["pose"])  # a consumer rebuilds the edge's pose from it
    assert any(line["targets"] for line in lines)
    target = lines[0]["targets"][0]
    assert set(target) == {"target_id", "target_class", "box", "ground_point", "ground_enu",
                           "foot_pixel"}  # fmt: skip


def test_the_mjpeg_stream_is_read_by_cv2_videocapture(config, poses):
    renderer = CameraRenderer(config, CameraSpec(width=320, height=180), poses)
    server = MjpegServer("127.0.0.1", 0).start()
    stop = threading.Event()
    producer = threading.Thread(target=stream, args=(renderer, server, 40.0, 20.0, stop))
    producer.start()
    try:
        host, port = server.address
        assert b" 400 " in _exchange(host, port, b"GARBAGE\r\n\r\n")
        assert b" 404 " in _exchange(host, port, b"GET /nope HTTP/1.0\r\n\r\n")
        # A client that leaves mid-stream, as a closed browser tab does.
        first = _exchange(host, port, b"GET /video.mjpg HTTP/1.0\r\n\r\n")
        assert b"multipart/x-mixed-replace" in first
        capture = cv2.VideoCapture(server.url)
        assert capture.isOpened()
        images = [capture.read() for _ in range(5)]
        capture.release()
        deadline = time.monotonic() + 5.0  # the server learns of a gone client on its next write
        while server.counters.clients_gone < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        producer.join()
        server.close()
    assert all(ok for ok, _ in images)
    assert all(image.shape == (180, 320, 3) for _, image in images)
    counters = server.counters
    assert counters.frames_published >= 5 and counters.parts_sent >= 5
    assert counters.clients_connected == 2 and counters.clients_gone >= 1


def _exchange(host: str, port: int, request: bytes) -> bytes:
    """Send one request, read the start of the answer, hang up."""
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(request)
        return connection.recv(4096)


def test_bad_input_is_refused_with_a_clear_message(config, tmp_path, capsys):
    out = str(tmp_path / "x.mp4")
    cases = [
        (["--sysid", "9", "--out", out], "has no drone 9"),
        (["--sysid", "1", "--out", out, "--duration", "1000"], "does not fit"),
        (["--sysid", "1", "--out", out, "--fps", "0"], "fps"),
        (["--mast", "22.7,14.2,-3,0,0", "--out", out], "height"),
    ]
    for extra, message in cases:
        assert sim_main(["camera", str(SMALL), *extra]) == 2
        assert message in capsys.readouterr().err
    assert sim_main(["camera", str(tmp_path / "missing.toml"), "--sysid", "1", "--out", out]) == 2
    with pytest.raises(SystemExit):  # argparse: a malformed occluder
        sim_main(["camera", str(SMALL), "--sysid", "1", "--out", out, "--occluder", "1,2,x"])
    with pytest.raises(ValueError, match="mode"):
        CameraSpec(mode="infrared")
    with pytest.raises(ValueError, match="non-finite"):
        mast_pose(config, float("nan"), 14.2, 10.0, 0.0, 0.0)
    renderer = CameraRenderer(config, CameraSpec(width=64, height=36),
                              lambda t: CameraPose(math.nan, 0, 0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="not finite"):
        renderer.render(1.0)


def test_warm_ground_is_drawn_warm_where_the_truth_says_and_only_by_the_thermal_camera(config):
    """Twelve warm spots scattered round the loiter centre, seeded: each one in view is
    warmer than the same pixels without it, by about its contrast at night."""
    area = WarmGroundConfig(name="rocks", centre=(22.699418, 14.180000), radius_m=40.0,
                            count=12, size_m=(1.2, 1.6), contrast_k=(6.0, 8.0))  # fmt: skip
    warm = config.model_copy(update={"warm_ground": [area]})
    origin = origin_of(config)
    spots = warm_spots(warm, origin)
    assert spots == warm_spots(warm, origin) and len(spots) == 12  # the seed decides
    centre = to_enu(origin, [area.centre, area.centre])[0]
    assert all(np.hypot(s.east - centre[0], s.north - centre[1]) <= 40.0 for s in spots)
    spec = CameraSpec(mode="thermal", lighting="night", fps=1.0, noise=0.0)
    plain = CameraRenderer(config, spec, DronePoses(config, 1)).render(70.0)
    rocky_renderer = CameraRenderer(warm, spec, DronePoses(warm, 1))
    rocky = rocky_renderer.render(70.0)
    view = rocky_renderer.view(rocky.pose)
    warmer = []
    for spot in spots:
        ground = np.array([[spot.east, spot.north, ground_up(origin, spot.east, spot.north)]])
        ((u, v),) = view.project(ground)[0]
        if 2 <= u < WIDTH - 2 and 2 <= v < HEIGHT - 2:
            x, y = int(u), int(v)
            warmer.append(int(rocky.image[y, x]) - int(plain.image[y, x]))
    # 6-8 K over a 45 K span of 255 grey levels is 34-45 levels; the lens blur takes some.
    assert len(warmer) >= 6 and min(warmer) > 15, warmer
    # Flat ground is not a target: the truth is the same; the EO camera does not draw it.
    assert [t.target_id for t in rocky.targets] == [t.target_id for t in plain.targets]
    in_view = rocky_renderer.in_view(70.0)
    assert [t.target_id for t in in_view] == [t.target_id for t in rocky.targets]
    eo = CameraSpec(mode="eo", lighting="night", fps=1.0, noise=0.0)
    plain_eo = CameraRenderer(config, eo, DronePoses(config, 1)).render(70.0)
    rocky_eo = CameraRenderer(warm, eo, DronePoses(warm, 1)).render(70.0)
    assert np.array_equal(plain_eo.image, rocky_eo.image)
