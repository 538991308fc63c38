"""Where a simulated camera looks: ground points to pixels, and the ground's homography.

Everything is expressed in the scenario's origin frame (the first post's ENU),
where targets live. A pose is MAVLink's: position in WGS84, the camera's
attitude as ZYX Euler angles against the *camera's own* local north-east-down
frame (the gimbal in the earth frame). Camera axes: x forward along the optical
axis, y right, z down; pixels: (0, 0) is the top-left corner of the image, so
the optical axis meets pixel (width / 2, height / 2).

Points are projected exactly (the ground is the ellipsoid at the origin's
height). The ground *texture* is drawn through the homography of one plane:
the tangent plane under the camera, which stays within millimetres of the
ellipsoid across a drone's footprint (d^2 / 2R: 7 mm at 300 m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from sim_hw.terrain import ground_up
from wire.geo import EnuFrame, enu_axes


@dataclass(frozen=True)
class Intrinsics:
    """An ideal pinhole: square pixels, the principal point at the image centre."""

    width: int
    height: int
    focal: float  # px

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov: float) -> Intrinsics:
        return cls(width, height, width / 2.0 / math.tan(hfov / 2.0))

    @property
    def centre(self) -> tuple[float, float]:
        return self.width / 2.0, self.height / 2.0

    @property
    def camera_from_ray(self) -> np.ndarray:
        """(u w, v w, w) from a camera-frame vector (x forward, y right, z down): w = x."""
        cx, cy = self.centre
        return np.array([[cx, self.focal, 0.0], [cy, 0.0, self.focal], [1.0, 0.0, 0.0]])


def up_at(origin: EnuFrame, east, north) -> np.ndarray:
    """The local vertical at ground points (east, north), in the origin's frame: (N, 3)."""
    lat, lon, _ = origin.to_geodetic(np.atleast_1d(east), np.atleast_1d(north),
                                     np.zeros(np.size(east)))  # fmt: skip
    phi, lam = np.radians(lat), np.radians(lon)
    up_ecef = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    return up_ecef @ np.array(enu_axes(origin.lat, origin.lon)).T


class View:
    """One camera pose in the origin's frame: projection, rays, and the ground homography."""

    def __init__(self, lat, lon, alt, gimbal_roll, gimbal_pitch, gimbal_yaw,
                 intrinsics: Intrinsics, origin: EnuFrame):  # fmt: skip
        self.intrinsics = intrinsics
        self.origin = origin
        self.position = np.array(origin.from_geodetic(lat, lon, alt), dtype=float)
        east, north, up = enu_axes(lat, lon)  # the camera's own axes, in ECEF
        ecef_from_ned = np.column_stack([north, east, -up])
        origin_from_ecef = np.array(enu_axes(origin.lat, origin.lon))
        ned_from_camera = Rotation.from_euler(
            "ZYX", [gimbal_yaw, gimbal_pitch, gimbal_roll]).as_matrix()  # fmt: skip
        # Columns: the camera's forward, right and down axes in the origin's ENU frame.
        self.enu_from_camera = origin_from_ecef @ ecef_from_ned @ ned_from_camera
        self._ground_plane()

    def _ground_plane(self) -> None:
        """The tangent plane of the ground under the camera, and its homographies."""
        e, n = self.position[0], self.position[1]
        foot = np.array([e, n, float(ground_up(self.origin, e, n))])
        normal = up_at(self.origin, e, n)[0]
        self.plane_point, self.plane_normal = foot, normal
        self.height_above_ground = float(normal @ (self.position - foot))
        # On the plane, up is an affine function of (east, north): (e, n, 1) -> (e, n, up).
        slope_e, slope_n = -normal[0] / normal[2], -normal[1] / normal[2]
        plane_from_en = np.array([
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [slope_e, slope_n, foot[2] - slope_e * foot[0] - slope_n * foot[1]],
        ])  # fmt: skip
        relative = plane_from_en - np.outer(self.position, [0.0, 0.0, 1.0])
        self.uv_from_en = self.intrinsics.camera_from_ray @ self.enu_from_camera.T @ relative
        # Its inverse takes (u, v, 1) to (e, n, 1) / depth: the third row is 1 / depth,
        # positive where the pixel sees the ground, not above the horizon.
        self.en_from_uv = np.linalg.inv(self.uv_from_en)

    # --- points -> pixels ---

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixels of (N, 3) ENU points, and their depths (NaN pixels behind)."""
        camera = (np.atleast_2d(points) - self.position) @ self.enu_from_camera
        depth = camera[:, 0]
        cx, cy = self.intrinsics.centre
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.column_stack([cx + self.intrinsics.focal * camera[:, 1] / depth,
                                  cy + self.intrinsics.focal * camera[:, 2] / depth])  # fmt: skip
        uv[depth <= 0] = np.nan
        return uv, depth

    # --- pixels -> rays and ground ---

    def rays(self, u, v) -> np.ndarray:
        """(N, 3) ENU directions (not unit) through pixels (u, v)."""
        cx, cy = self.intrinsics.centre
        f = self.intrinsics.focal
        u, v = np.ravel(u), np.ravel(v)
        camera = np.column_stack([np.ones_like(u), (u - cx) / f, (v - cy) / f])
        return camera @ self.enu_from_camera.T

    def inverse_depth(self, u, v) -> np.ndarray:
        """1 / depth of the ground seen at pixels (u, v); <= 0 where they see sky."""
        h = self.en_from_uv[2]
        return h[0] * np.asarray(u) + h[1] * np.asarray(v) + h[2]

    def ground_range(self, u, v) -> np.ndarray:
        """Distance from the camera to the ground seen at (u, v); inf for sky."""
        inverse = self.inverse_depth(u, v)
        length = np.linalg.norm(self.rays(u, v), axis=1).reshape(np.shape(inverse))
        with np.errstate(divide="ignore"):
            return np.where(inverse > 0, length / np.where(inverse > 0, inverse, 1.0), np.inf)

    def metres_per_pixel(self, u, v) -> np.ndarray:
        """Square root of the ground area one pixel covers at (u, v) (inf for sky).

        For a homography (e, n) = H(u, v) the area scale is det(H) / w^3, w the
        third homogeneous coordinate.
        """
        w = self.inverse_depth(u, v)
        det = abs(float(np.linalg.det(self.en_from_uv)))
        with np.errstate(divide="ignore"):
            return np.where(w > 0, np.sqrt(det / np.abs(w) ** 3), np.inf)

    def boresight_point(self, fallback_range: float = 1000.0) -> np.ndarray:
        """The ground point at the image centre, or a point `fallback_range` along the optical
        axis when it looks above the horizon."""
        cx, cy = self.intrinsics.centre
        homogeneous = self.en_from_uv @ np.array([cx, cy, 1.0])
        forward = self.enu_from_camera[:, 0]
        if homogeneous[2] <= 0:
            return self.position + fallback_range * forward
        e, n = homogeneous[:2] / homogeneous[2]
        return np.array([e, n, float(ground_up(self.origin, e, n))])

    def en_from_pixels(self, scale: float = 1.0) -> np.ndarray:
        """Homography from OpenCV pixel centres of an image `scale` times this camera's size
        (pixel (x, y) covers (x + 0.5) / scale, (y + 0.5) / scale here) to (east, north)."""
        to_uv = np.array([[1 / scale, 0.0, 0.5 / scale], [0.0, 1 / scale, 0.5 / scale],
                          [0.0, 0.0, 1.0]])  # fmt: skip
        return self.en_from_uv @ to_uv
