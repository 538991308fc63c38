"""A drone camera's footprint in the node's telemetry against the simulator's own camera.

The node reads the small scenario's drone over its MAVLink driver core (the tlog's
datagrams up to each frame's time) and publishes its telemetry through the outbox. The
simulator renders what that drone's camera sees and says, per target, which pixel its
feet are at. On flat ground a pinhole camera maps the ground to the image by a
homography, and the footprint's four corners are four ground points of known pixels (the
image's corners): the homography they give must put every target's feet on the pixel the
renderer drew them at.
"""

import math

import cv2
import numpy as np
import pytest

from edge.drivers.framing import tlog_entries
from edge.drivers.mavlink import MavlinkConfig, MavlinkDriver
from edge.georef import Camera, Georeferencer
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.run import drone_pose
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from sim_hw.camera import CameraSpec, render_drone_camera
from sim_hw.scenario import load_config
from sim_hw.truth import write_scenario
from tests.conftest import PROJECT_ROOT
from wire.geo import EnuFrame
from wire.messages import VehicleTelemetry, decode

pytestmark = pytest.mark.integration

START_S, DURATION_S, FPS = 60.0, 30.0, 1.0


class NoFrames:
    def latest(self):
        return None


def test_the_footprint_in_the_telemetry_is_what_the_simulated_camera_sees(tmp_path):
    scenario = load_config(PROJECT_ROOT / "configs" / "scenarios" / "small.toml")
    write_scenario(scenario, tmp_path)
    post = scenario.posts[0]
    frame = EnuFrame(post.lat, post.lon, post.alt)
    spec = CameraSpec(width=640, height=360, mode="thermal", fps=FPS)
    rendered = list(render_drone_camera(scenario, 1, spec, START_S, DURATION_S, seed=3))

    driver = MavlinkDriver(MavlinkConfig(url="udpin:127.0.0.1:0"))
    camera = Camera.from_hfov(math.radians(spec.hfov_deg), spec.width, spec.height)
    pipeline = CameraPipeline("drone-1-thermal", NoFrames(), None, drone_pose([driver], 1),
                              Georeferencer(camera, frame), drone_sysid=1)  # fmt: skip
    outbox = Outbox(tmp_path / "outbox.db", first_seq=0)
    node = EdgeNode(NodeSettings("small", "post-1", frame), Tracker(),
                    Uplink(UplinkConfig(site="small", node="post-1"), outbox),  # not started
                    drivers=[driver], cameras=[pipeline])  # fmt: skip
    datagrams = iter(tlog_entries((tmp_path / "small-sysid1.tlog").read_bytes()))
    pending = next(datagrams)
    image_corners = np.array([[0, 0], [spec.width, 0], [spec.width, spec.height],
                              [0, spec.height]], np.float32)  # fmt: skip
    errors, checked_frames = [], 0
    for shot in rendered:
        while pending is not None and pending[0] <= shot.time:  # the link up to this frame
            driver.receiver.feed_datagram(pending[1], pending[0])
            pending = next(datagrams, None)
        node.publish_telemetry(shot.time)
        message = decode(outbox.after(0)[-1].payload)
        assert isinstance(message, VehicleTelemetry) and message.sysid == 1
        assert abs(message.time - shot.time) < 0.2  # the pose of (nearly) the frame's time
        [footprint] = message.footprints
        assert footprint.camera == "drone-1-thermal" and None not in footprint.corners
        lon, lat = np.array(footprint.corners).T
        east, north, _ = frame.from_geodetic(lat, lon, np.full(4, frame.alt))
        ground_to_image = cv2.getPerspectiveTransform(
            np.column_stack([east, north]).astype(np.float32), image_corners
        )
        feet = shot.targets
        if not feet:
            continue
        checked_frames += 1
        ground = np.array([t.ground_enu for t in feet], np.float64).reshape(-1, 1, 2)
        pixels = cv2.perspectiveTransform(ground, ground_to_image.astype(np.float64))
        drawn = np.array([t.foot_pixel for t in feet])
        errors.extend(np.linalg.norm(pixels.reshape(-1, 2) - drawn, axis=1))
    assert checked_frames >= 5, "the camera must see targets for this test to mean anything"
    # Within half a pixel (measured: 0.02 px); the telemetry's pose is the newest position
    # fix, which the simulator stamps at the frame's time.
    print(
        f"footprint homography vs rendered feet: {len(errors)} targets, "
        f"p95 {np.percentile(errors, 95):.2f} px, max {np.max(errors):.2f} px"
    )
    assert np.max(errors) < 0.5, np.round(errors, 2)
