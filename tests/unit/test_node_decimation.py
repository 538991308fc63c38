"""A node that cannot take every frame says so: decimation on purpose, counted; late frames
counted; both in its metrics."""

import math

import numpy as np
import pytest

from edge.config import CameraSection
from edge.detection import Detection
from edge.georef import Camera, Georeferencer
from edge.metrics import edge_registry
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.run import min_interval
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from tests.unit.test_edge_metrics import (
    NODE,
    POST,
    SITE,
    Frame,
    ScriptedSource,
    samples,
    value,
)
from tests.unit.test_edge_metrics import mast_pose as scripted_mast_pose

pytestmark = pytest.mark.unit

FPS = 10.0


class OnePerson:
    """One detection a frame, in the middle of the image."""

    def __init__(self):
        self.frames = []

    def detect(self, t, image, pose):
        self.frames.append(t)
        return [Detection((300, 200, 340, 280), (320, 240), np.eye(2) * 4.0, "person", 0.9)]


def mast_pose(t):
    return scripted_mast_pose(1000.0)  # the mast stands still


def test_a_camera_decimated_to_half_its_rate_is_counted_and_the_late_frames_too(tmp_path):
    frames = [Frame(1000.0 + k / FPS, np.zeros((480, 640), np.uint8)) for k in range(20)]
    detector = OnePerson()
    camera = CameraPipeline("mast-thermal", ScriptedSource(frames), detector, mast_pose,
                            Georeferencer(Camera.from_hfov(math.radians(60.0), 640, 480), POST),
                            min_interval_s=min_interval(CameraSection(
                                name="mast-thermal", source="x", width=640, height=480,
                                hfov_deg=60.0, mast=(POST.lat, POST.lon, 12.0),
                                process_fps=FPS / 2)))  # fmt: skip
    now = {"t": 0.0}
    outbox = Outbox(tmp_path / "outbox.db")
    node = EdgeNode(NodeSettings(SITE, NODE, POST), Tracker(),
                    Uplink(UplinkConfig(site=SITE, node=NODE), outbox), cameras=[camera],
                    clock=lambda: now["t"])  # fmt: skip
    try:
        for k, frame in enumerate(frames):
            # The loop keeps up for the first second, then runs 2 s behind its camera.
            now["t"] = frame.time + (0.05 if k < 10 else 2.0)
            assert node.sense()
        assert node.counters.frames == 20
        # Every other frame, evenly: 1000.0, 1000.2, ...
        assert detector.frames == pytest.approx([1000.0 + 0.2 * k for k in range(10)])
        assert node.counters.frames_decimated == 10
        assert node.counters.frames_late == 5  # the processed frames of the second second
        found = samples(edge_registry(node))
        assert value(found, "dunewatch_edge_frames_skipped_total", reason="decimated") == 10
        assert value(found, "dunewatch_edge_frames_late_total") == 5
    finally:
        outbox.close()


def test_without_a_rate_every_frame_is_taken():
    section = CameraSection(name="c", source="x", width=640, height=480, hfov_deg=60.0,
                            drone_sysid=1)  # fmt: skip
    assert min_interval(section) == 0.0
    with pytest.raises(ValueError):
        CameraSection(name="c", source="x", width=640, height=480, hfov_deg=60.0,
                      drone_sysid=1, process_fps=0.0)  # fmt: skip
