"""Where a blob in an EO frame meets the ground, and what its pixels span there.

Pixel geometry for `edge.detection.eo_motion`: a standing target's foot is the
lowest point of its box along the direction in which the world's vertical
points down in the image (straight down the image only when the camera does
not roll); the angle a pixel spans turns the slant range into metres.
"""

from __future__ import annotations

import numpy as np

from edge.georef import Camera, Pose, camera_to_ned


def down_directions(camera: Camera, pose: Pose, boxes: np.ndarray) -> np.ndarray:
    """(N, 2) unit image directions in which the world's vertical points down at each box.

    A standing target's foot is its lowest point along that direction; with the
    camera level (no roll) it is straight down the image.
    """
    down = camera_to_ned(pose)[2, :]  # NED down in camera axes (x forward, y right, z down)
    u = (boxes[:, 0] + boxes[:, 2]) / 2.0
    v = (boxes[:, 1] + boxes[:, 3]) / 2.0
    # Derivative of the pinhole projection along `down`, at the ray through (u, v).
    du = camera.fx * (down[1] - (u - camera.cx) / camera.fx * down[0])
    dv = camera.fy * (down[2] - (v - camera.cy) / camera.fy * down[0])
    norm = np.hypot(du, dv)
    norm[norm == 0] = 1.0
    return np.stack([du / norm, dv / norm], axis=1)


def feet(boxes: np.ndarray, down: np.ndarray) -> np.ndarray:
    """(N, 2) the point of each box farthest along its down direction, from its centre."""
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]), (boxes[:, 1] + boxes[:, 3])], axis=1) / 2.0
    half = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) / 2.0
    reach = np.abs(down[:, 0]) * half[:, 0] + np.abs(down[:, 1]) * half[:, 1]
    return np.clip(centre + down * reach[:, None], boxes[:, :2], boxes[:, 2:])


def pixel_angle(camera: Camera, pixels: np.ndarray) -> np.ndarray:
    """(N,) radians one pixel spans at each pixel (geometric mean of its two sides)."""
    u, v = pixels[:, 0], pixels[:, 1]
    rays = camera.rays(np.stack([u, u + 1, u], 1), np.stack([v, v, v + 1], 1)).reshape(-1, 3, 3)
    rays /= np.linalg.norm(rays, axis=2, keepdims=True)
    across = np.linalg.norm(rays[:, 1] - rays[:, 0], axis=1)
    along = np.linalg.norm(rays[:, 2] - rays[:, 0], axis=1)
    return np.sqrt(across * along)


def foot_covariance(box) -> np.ndarray:
    """px²: the foot is somewhere on the box's lower part; a quarter of its size per axis."""
    sigma_u = max(1.0, (box[2] - box[0]) / 4.0)
    sigma_v = max(1.0, (box[3] - box[1]) / 4.0)
    return np.diag([sigma_u**2, sigma_v**2])
