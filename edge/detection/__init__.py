"""Detection of people and vehicles in camera frames: what a detector hands on.

Each detector (`eo_motion`, `thermal`, `thermal_learned`) turns one frame into
`Detection`s in pixels; `ground_measurements` turns them, through the camera's pose and
`edge.georef`, into what the tracker's `update(t, z, R)` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.georef import Georeferencer, GroundMeasurements, Pose

CLASSES = ("person", "vehicle", "animal", "unknown")


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels; (0, 0) top-left corner
    centroid: tuple[float, float]  # u, v pixels: where the target meets the ground
    pixel_covariance: np.ndarray  # (2, 2) px² of the centroid
    target_class: str  # one of CLASSES
    score: float  # 0..1, higher is surer
    # A learned detector's class probabilities (class -> p, summing to 1), for the
    # tracker's class estimate; None where the detector only names a class.
    class_probabilities: dict[str, float] | None = None
    # A calibrated thermal camera's word on the blob's warmth: its contrast over the ground
    # around it (K), and whether that is a warm body's (a person, an animal, a running
    # engine) rather than ground that kept the day's heat. None where it cannot say (EO,
    # an uncalibrated thermal core).
    contrast_k: float | None = None
    warm_body: bool | None = None

    def __post_init__(self):
        if self.target_class not in CLASSES:
            raise ValueError(f"target_class {self.target_class!r} is not one of {CLASSES}")


def ground_measurements(detections: list[Detection], pose: Pose,
                        georeferencer: Georeferencer) -> GroundMeasurements:  # fmt: skip
    """The detections as ENU ground points with covariance, in the detections' order.

    Rows whose ray misses the ground come back flagged (status not OK, NaN z and R),
    as `Georeferencer.locate` reports them; the caller keeps `result.ok`.
    """
    u = np.array([d.centroid[0] for d in detections], dtype=float)
    v = np.array([d.centroid[1] for d in detections], dtype=float)
    return georeferencer.locate(pose, u, v)
