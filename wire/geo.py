"""WGS84 geodetic <-> ECEF <-> local ENU, the frames every number is expressed in.

Geodetic positions are (lat, lon) in degrees and height in metres above the
ellipsoid; ECEF and ENU are metres. Functions take scalars or NumPy arrays of
any matching shape. A node tracks in the ENU frame of its post, `EnuFrame`.
The `*_batch` kernels (Numba) do the same on (N, 3) arrays of points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
WGS84_EP2 = WGS84_E2 / (1.0 - WGS84_E2)  # second eccentricity squared


def geodetic_to_ecef(lat, lon, height):
    phi, lam = np.radians(lat), np.radians(lon)
    sin_phi = np.sin(phi)
    prime_vertical = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_phi**2)
    x = (prime_vertical + height) * np.cos(phi) * np.cos(lam)
    y = (prime_vertical + height) * np.cos(phi) * np.sin(lam)
    z = (prime_vertical * (1.0 - WGS84_E2) + height) * sin_phi
    return x, y, z


def ecef_to_geodetic(x, y, z):
    """Bowring's method with two refinements: well below a millimetre near the Earth."""
    x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
    p = np.hypot(x, y)
    lam = np.arctan2(y, x)
    # Parametric latitude as the starting point, then refine twice.
    beta = np.arctan2(z * WGS84_A, p * WGS84_B)
    for _ in range(2):
        phi = np.arctan2(
            z + WGS84_EP2 * WGS84_B * np.sin(beta) ** 3,
            p - WGS84_E2 * WGS84_A * np.cos(beta) ** 3,
        )
        beta = np.arctan2((1.0 - WGS84_F) * np.sin(phi), np.cos(phi))
    sin_phi = np.sin(phi)
    prime_vertical = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_phi**2)
    # Height from whichever of p and z is better conditioned at this latitude.
    cos_phi = np.cos(phi)
    height = np.where(
        np.abs(cos_phi) > 1e-3,
        p / np.where(np.abs(cos_phi) > 1e-3, cos_phi, 1.0) - prime_vertical,
        z / np.where(np.abs(sin_phi) > 1e-3, sin_phi, 1.0) - prime_vertical * (1.0 - WGS84_E2),
    )
    return np.degrees(phi), np.degrees(lam), height


def enu_axes(lat, lon):
    """The local east, north and up unit vectors at (lat, lon), in ECEF."""
    phi, lam = np.radians(lat), np.radians(lon)
    east = np.array([-np.sin(lam), np.cos(lam), 0.0])
    north = np.array([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)])
    up = np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    return east, north, up


@dataclass(frozen=True)
class EnuFrame:
    """The east-north-up frame anchored at a post (lat, lon degrees, height metres)."""

    lat: float
    lon: float
    alt: float

    @property
    def origin(self) -> np.ndarray:
        """(lat, lon, alt) as the (3,) float64 array the batch kernels take."""
        return np.array([self.lat, self.lon, self.alt], dtype=np.float64)

    def to_geodetic(self, east, north, up):
        ex, no, upv = enu_axes(self.lat, self.lon)
        origin = geodetic_to_ecef(self.lat, self.lon, self.alt)
        east, north, up = np.asarray(east, float), np.asarray(north, float), np.asarray(up, float)
        x, y, z = (origin[k] + east * ex[k] + north * no[k] + up * upv[k] for k in range(3))
        return ecef_to_geodetic(x, y, z)

    def from_geodetic(self, lat, lon, height):
        ex, no, upv = enu_axes(self.lat, self.lon)
        origin = geodetic_to_ecef(self.lat, self.lon, self.alt)
        x, y, z = geodetic_to_ecef(lat, lon, height)
        d = (x - origin[0], y - origin[1], z - origin[2])
        east = d[0] * ex[0] + d[1] * ex[1] + d[2] * ex[2]
        north = d[0] * no[0] + d[1] * no[1] + d[2] * no[2]
        up = d[0] * upv[0] + d[1] * upv[1] + d[2] * upv[2]
        return east, north, up


# Batched Numba kernels. Points are rows of contiguous (N, 3) float64 arrays:
# geodetic rows are (lat deg, lon deg, height m), ECEF and ENU rows are metres.
# An ENU frame is named by its origin, a (3,) array (lat deg, lon deg, height m),
# which `EnuFrame.origin` gives. The one-point functions are @njit too, so that
# other kernels (edge.georef) call them inside their own loops.


@njit(cache=True)
def geodetic_to_ecef_point(lat, lon, height):
    phi, lam = math.radians(lat), math.radians(lon)
    sin_phi, cos_phi = math.sin(phi), math.cos(phi)
    prime_vertical = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sin_phi * sin_phi)
    horizontal = (prime_vertical + height) * cos_phi
    z = (prime_vertical * (1.0 - WGS84_E2) + height) * sin_phi
    return horizontal * math.cos(lam), horizontal * math.sin(lam), z


@njit(cache=True)
def ecef_to_geodetic_point(x, y, z):
    """Bowring's iteration from the parametric latitude, refined twice (as above)."""
    p = math.hypot(x, y)
    beta = math.atan2(z * WGS84_A, p * WGS84_B)
    phi = beta
    for _ in range(2):
        sin_b, cos_b = math.sin(beta), math.cos(beta)
        phi = math.atan2(
            z + WGS84_EP2 * WGS84_B * sin_b * sin_b * sin_b,
            p - WGS84_E2 * WGS84_A * cos_b * cos_b * cos_b,
        )
        beta = math.atan2((1.0 - WGS84_F) * math.sin(phi), math.cos(phi))
    sin_phi, cos_phi = math.sin(phi), math.cos(phi)
    # The projection of (p, z) on the normal: no division, so it holds at the poles too.
    height = p * cos_phi + z * sin_phi - WGS84_A * math.sqrt(1.0 - WGS84_E2 * sin_phi * sin_phi)
    return math.degrees(phi), math.degrees(math.atan2(y, x)), height


@njit(cache=True)
def ecef_to_enu_rotation(lat, lon):
    """Rows: the east, north and up unit vectors at (lat, lon) in ECEF."""
    phi, lam = math.radians(lat), math.radians(lon)
    sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
    return np.array([
        [-sl, cl, 0.0],
        [-sp * cl, -sp * sl, cp],
        [cp * cl, cp * sl, sp],
    ])  # fmt: skip


@njit(cache=True)
def geodetic_to_ecef_batch(points):
    out = np.empty_like(points)
    for i in range(points.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = geodetic_to_ecef_point(
            points[i, 0], points[i, 1], points[i, 2]
        )
    return out


@njit(cache=True)
def ecef_to_geodetic_batch(points):
    out = np.empty_like(points)
    for i in range(points.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = ecef_to_geodetic_point(
            points[i, 0], points[i, 1], points[i, 2]
        )
    return out


@njit(cache=True)
def geodetic_to_enu_batch(origin, points):
    """Geodetic rows -> ENU rows in the frame anchored at `origin`."""
    rotation = ecef_to_enu_rotation(origin[0], origin[1])
    ox, oy, oz = geodetic_to_ecef_point(origin[0], origin[1], origin[2])
    out = np.empty_like(points)
    for i in range(points.shape[0]):
        x, y, z = geodetic_to_ecef_point(points[i, 0], points[i, 1], points[i, 2])
        dx, dy, dz = x - ox, y - oy, z - oz
        for k in range(3):
            out[i, k] = rotation[k, 0] * dx + rotation[k, 1] * dy + rotation[k, 2] * dz
    return out


@njit(cache=True)
def enu_to_geodetic_batch(origin, points):
    """ENU rows in the frame anchored at `origin` -> geodetic rows."""
    rotation = ecef_to_enu_rotation(origin[0], origin[1])
    ox, oy, oz = geodetic_to_ecef_point(origin[0], origin[1], origin[2])
    out = np.empty_like(points)
    for i in range(points.shape[0]):
        e, n, u = points[i, 0], points[i, 1], points[i, 2]
        # The rotation is orthonormal: ENU -> ECEF is its transpose.
        x = ox + rotation[0, 0] * e + rotation[1, 0] * n + rotation[2, 0] * u
        y = oy + rotation[0, 1] * e + rotation[1, 1] * n + rotation[2, 1] * u
        z = oz + rotation[0, 2] * e + rotation[1, 2] * n + rotation[2, 2] * u
        out[i, 0], out[i, 1], out[i, 2] = ecef_to_geodetic_point(x, y, z)
    return out


def segment_crossing(a, b, p, q) -> float | None:
    """Where the path a->b crosses the segment p->q (2-D, e.g. ENU east/north), as the
    fraction of the way from a to b; None when it does not. A path that ends exactly on
    the segment has not crossed it yet; one that starts on it has."""
    r = (b[0] - a[0], b[1] - a[1])
    s = (q[0] - p[0], q[1] - p[1])
    denominator = r[0] * s[1] - r[1] * s[0]
    if abs(denominator) < 1e-12:
        return None  # parallel
    offset = (p[0] - a[0], p[1] - a[1])
    u = (offset[0] * s[1] - offset[1] * s[0]) / denominator
    v = (offset[0] * r[1] - offset[1] * r[0]) / denominator
    return u if 0.0 <= u < 1.0 and 0.0 <= v <= 1.0 else None


def compass_course(ve: float, vn: float) -> float:
    """Degrees clockwise from north, in [0, 360), of a velocity east and north (0 when
    still). North is the ENU frame's: it parts from true north by the meridian
    convergence, a fraction of a degree across a post's area."""
    course = math.degrees(math.atan2(ve, vn)) % 360.0
    return 0.0 if course >= 360.0 else course  # -1e-20 % 360 rounds to 360.0
