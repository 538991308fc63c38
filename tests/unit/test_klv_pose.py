"""KLV records as georeferencing poses: the ST 0601 rotation order against scipy, the
frame centre against a ray traced here with pyproj, poses between packets, the stream
clock, the lens that follows the zoom, and the camera config kind."""

import math
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError
from pyproj import Transformer
from scipy.spatial.transform import Rotation

from edge.config import CameraSection
from edge.drivers.klv_camera import KlvCamera, StreamClock
from edge.drivers.klv_metadata import KlvRecord
from edge.drivers.klv_pose import PoseSeries, camera_pose, georeferenced_centre
from edge.georef import camera_to_ned
from edge.klv_pipeline import FollowingDetector, FollowingGeoreferencer
from wire.geo import EnuFrame


def record(**changes) -> KlvRecord:
    values = dict(standard="ST0601", time=100.0, platform_heading=30.0, platform_pitch=4.0,
                  platform_roll=-8.0, sensor_lat=31.0, sensor_lon=35.0, sensor_alt_hae=2500.0,
                  rel_azimuth=60.0, rel_elevation=-40.0, rel_roll=5.0, hfov=20.0, vfov=11.3,
                  frame_centre=(None, None, 500.0))  # fmt: skip
    return KlvRecord(**(values | changes))


def test_the_pointing_is_platform_then_sensor_azimuth_elevation_roll():
    pose = camera_pose(record())
    expected = (Rotation.from_euler("ZYX", [30.0, 4.0, -8.0], degrees=True)
                * Rotation.from_euler("ZYX", [60.0, -40.0, 5.0], degrees=True)).as_matrix()
    np.testing.assert_allclose(camera_to_ned(pose), expected, atol=1e-12)


def test_a_record_without_position_or_pointing_has_no_pose():
    with pytest.raises(LookupError, match="rel_elevation"):
        camera_pose(record(rel_elevation=None))
    with pytest.raises(LookupError, match="sensor_alt_hae"):
        camera_pose(record(sensor_alt_hae=None))


def test_the_frame_centre_meets_a_ray_traced_here():
    """The boresight from the sensor, stepped along in ECEF with pyproj until it is at the
    frame-centre height: the same point as georeferenced_centre's."""
    r = record()
    centre = georeferenced_centre(r, 1280, 720)
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    to_geo = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    lat, lon = math.radians(r.sensor_lat), math.radians(r.sensor_lon)
    north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon),
                      math.cos(lat)])  # fmt: skip
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    down = -np.cross(east, north)
    axis_ned = camera_to_ned(camera_pose(r))[:, 0]
    direction = axis_ned[0] * north + axis_ned[1] * east + axis_ned[2] * down
    origin = np.array(to_ecef.transform(r.sensor_lon, r.sensor_lat, r.sensor_alt_hae))
    low, high = 0.0, 20_000.0
    for _ in range(100):  # bisection on the height along the ray
        middle = (low + high) / 2
        height = to_geo.transform(*(origin + middle * direction))[2]
        low, high = (middle, high) if height > 500.0 else (low, middle)
    lon_ref, lat_ref, _ = to_geo.transform(*(origin + low * direction))
    assert centre.lat == pytest.approx(lat_ref, abs=1e-8)
    assert centre.lon == pytest.approx(lon_ref, abs=1e-8)
    assert centre.alt_hae == pytest.approx(500.0, abs=0.01)
    covariance = np.array(centre.covariance_enu_m2)
    assert np.allclose(covariance, covariance.T) and np.all(np.linalg.eigvalsh(covariance) > 0)


def test_poses_between_packets_are_interpolated_the_short_way_round():
    series = PoseSeries(max_gap_s=1.0, max_extrapolate_s=0.1)
    assert series.add(record(time=10.0, platform_heading=350.0, sensor_lat=31.0))
    assert series.add(record(time=10.5, platform_heading=10.0, sensor_lat=31.001))
    assert not series.add(record(time=10.5))  # the same time again
    assert not series.add(record(time=11.0, rel_azimuth=None))  # no pose: not kept
    middle = series.record_at(10.25)
    assert middle.platform_heading % 360.0 == pytest.approx(0.0, abs=1e-9)
    assert middle.sensor_lat == pytest.approx(31.0005)
    assert series.record_at(10.55).time == 10.5  # just past the last: the nearest
    with pytest.raises(LookupError):
        series.record_at(11.0)
    assert series.add(record(time=5.0))  # the stream went back: it starts over
    assert len(series) == 1


def test_the_stream_clock_takes_the_median_and_restarts_on_a_jump():
    clock = StreamClock()
    assert clock.utc(1.0) is None
    for k, jitter in enumerate([0.0, 0.04, -0.04, 0.0, 0.01]):
        clock.observe(k * 0.04, 1000.0 + k * 0.04 + jitter)
    assert clock.utc(1.0) == pytest.approx(1001.0)
    clock.observe(2.0, 5000.0)  # an encoder restarted with another clock
    assert clock.jumps == 1 and clock.utc(3.0) == pytest.approx(5001.0)


class CountingDetector:
    def __init__(self, camera):
        self.camera = camera

    def detect(self, t, image, pose):
        return []


def test_the_lens_follows_the_metadatas_zoom():
    klv = KlvCamera.__new__(KlvCamera)  # no geoid or stream needed for this
    klv.last_record = None
    frame = EnuFrame(31.0, 35.0, 500.0)
    georeferencer = FollowingGeoreferencer(klv, 1280, 720, frame)
    detector = FollowingDetector(klv, 1280, 720, CountingDetector)
    pose = camera_pose(record())
    klv.last_record = record(hfov=20.0)
    detector.detect(1.0, None, pose)
    georeferencer.locate(pose, [640.0], [360.0])
    assert georeferencer.camera.fx == pytest.approx(640.0 / math.tan(math.radians(10.0)))
    assert detector.detector.camera.fx == georeferencer.camera.fx and detector.rebuilds == 1
    klv.last_record = replace(klv.last_record, hfov=20.1)  # 0.5 %: the same detector
    detector.detect(2.0, None, pose)
    assert detector.rebuilds == 1
    klv.last_record = replace(klv.last_record, hfov=5.0)
    detector.detect(3.0, None, pose)
    assert detector.rebuilds == 2


def test_a_klv_camera_has_no_mount_and_a_video_camera_needs_one():
    section = CameraSection(name="reaper", kind="klv", source="udp://@239.1.1.1:15004",
                            width=1280, height=720)  # fmt: skip
    assert section.hfov_deg is None
    with pytest.raises(ValidationError, match="no drone_sysid or mast"):
        CameraSection(name="x", kind="klv", source="a.ts", width=640, height=480,
                      drone_sysid=1)  # fmt: skip
    with pytest.raises(ValidationError, match="hfov_deg is required"):
        CameraSection(name="x", source="a.mp4", width=640, height=480, drone_sysid=1)


def test_the_shipped_klv_post_config_loads():
    from edge.config import load_config
    from tests.conftest import PROJECT_ROOT

    config = load_config(PROJECT_ROOT / "configs" / "edge" / "tummo-east.toml")
    (camera,) = config.cameras
    assert camera.kind == "klv" and camera.source.startswith("udp://@239.")
    assert config.mavlink == []
