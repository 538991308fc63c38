"""A KLV camera's place in the node: its lens follows the metadata's field of view.

An aircraft's turret zooms: the field of view a KLV packet states is that of
its frame. The node asks a camera for the pose at a frame's time and then
detects and georeferences that frame, on one thread, in that order; so the
record of the last `pose_at` is the frame's, and:
- `FollowingGeoreferencer` takes its intrinsics from that record before it
  locates the frame's detections;
- `FollowingDetector` rebuilds its detector when the field of view has moved
  by more than `ZOOM_TOLERANCE` (a detector's blob sizes are in metres through
  its camera; a zoom step also breaks its frame-to-frame registration, which
  a fresh detector starts over).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edge.drivers.klv_camera import KlvCamera
from edge.drivers.klv_pose import KLV_ERROR_BUDGET, camera_model
from edge.georef import Camera, ErrorBudget, Georeferencer, GroundMeasurements, Pose
from wire.geo import EnuFrame

ZOOM_TOLERANCE = 0.01  # relative change of the focal length that rebuilds the detector
DEFAULT_HFOV_DEG = 60.0  # until the first packet says


def klv_lens(klv: KlvCamera, width: int, height: int, fallback: Camera) -> Camera:
    """The camera of the record of the last pose asked for, or `fallback`."""
    record = klv.last_record
    if record is None:
        return fallback
    try:
        return camera_model(record, width, height)
    except LookupError:
        return fallback


class FollowingGeoreferencer(Georeferencer):
    def __init__(self, klv: KlvCamera, width: int, height: int, frame: EnuFrame,
                 hfov_deg: float | None = None,
                 budget: ErrorBudget = KLV_ERROR_BUDGET):  # fmt: skip
        initial = Camera.from_hfov(math.radians(hfov_deg or DEFAULT_HFOV_DEG), width, height)
        super().__init__(initial, frame, budget=budget)
        self.klv = klv

    def locate(self, pose: Pose, u, v) -> GroundMeasurements:
        self.camera = klv_lens(self.klv, self.camera.width, self.camera.height, self.camera)
        return super().locate(pose, u, v)


class FollowingDetector:
    """A detector (the node's `Detector`) made by `build(camera)` for the current lens."""

    def __init__(self, klv: KlvCamera, width: int, height: int,
                 build: Callable[[Camera], object], hfov_deg: float | None = None):  # fmt: skip
        self.klv = klv
        self.size = (width, height)
        self.camera = Camera.from_hfov(math.radians(hfov_deg or DEFAULT_HFOV_DEG), width, height)
        self._build = build
        self.detector = build(self.camera)
        self.rebuilds = 0

    def detect(self, t: float, image: np.ndarray, pose: Pose):
        lens = klv_lens(self.klv, *self.size, self.camera)
        if abs(lens.fx / self.camera.fx - 1.0) > ZOOM_TOLERANCE:
            self.camera = lens
            self.detector = self._build(lens)
            self.rebuilds += 1
        return self.detector.detect(t, image, pose)
