"""WGS84 geodetic <-> ECEF <-> local ENU, the frames every number is expressed in.

Geodetic positions are (lat, lon) in degrees and height in metres above the
ellipsoid; ECEF and ENU are metres. Functions take scalars or NumPy arrays of
any matching shape. A node tracks in the ENU frame of its post, `EnuFrame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def _enu_axes(lat, lon):
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

    def to_geodetic(self, east, north, up):
        ex, no, upv = _enu_axes(self.lat, self.lon)
        origin = geodetic_to_ecef(self.lat, self.lon, self.alt)
        east, north, up = np.asarray(east, float), np.asarray(north, float), np.asarray(up, float)
        x, y, z = (origin[k] + east * ex[k] + north * no[k] + up * upv[k] for k in range(3))
        return ecef_to_geodetic(x, y, z)

    def from_geodetic(self, lat, lon, height):
        ex, no, upv = _enu_axes(self.lat, self.lon)
        origin = geodetic_to_ecef(self.lat, self.lon, self.alt)
        x, y, z = geodetic_to_ecef(lat, lon, height)
        d = (x - origin[0], y - origin[1], z - origin[2])
        east = d[0] * ex[0] + d[1] * ex[1] + d[2] * ex[2]
        north = d[0] * no[0] + d[1] * no[1] + d[2] * no[2]
        up = d[0] * upv[0] + d[1] * upv[1] + d[2] * upv[2]
        return east, north, up
