"""wire.geo against pyproj, to millimetres at border-post scale."""

import numpy as np
import pytest
from pyproj import Transformer

from wire.geo import EnuFrame, ecef_to_geodetic, geodetic_to_ecef

pytestmark = pytest.mark.unit

TO_ECEF = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


def test_geodetic_to_ecef_and_back_match_pyproj():
    rng = np.random.default_rng(0)
    lat = rng.uniform(-89.9, 89.9, 2000)
    lon = rng.uniform(-180, 180, 2000)
    height = rng.uniform(-500, 30_000, 2000)
    x, y, z = geodetic_to_ecef(lat, lon, height)
    px, py, pz = TO_ECEF.transform(lon, lat, height)
    assert np.max(np.abs(np.array([x - px, y - py, z - pz]))) < 1e-6
    back_lat, back_lon, back_h = ecef_to_geodetic(px, py, pz)
    assert np.max(np.abs(back_lat - lat)) < 1e-9  # degrees: about 0.1 mm
    assert np.max(np.abs(back_lon - lon)) < 1e-9
    assert np.max(np.abs(back_h - height)) < 1e-4


def test_enu_round_trip_within_100_km_to_a_millimetre():
    frame = EnuFrame(22.694, 14.180, 700.0)
    rng = np.random.default_rng(1)
    enu = rng.uniform(-100_000, 100_000, size=(3, 1000))
    enu[2] = rng.uniform(-100, 3000, 1000)
    lat, lon, h = frame.to_geodetic(*enu)
    # Independently: the ENU offset rotated into ECEF by pyproj's origin.
    ox, oy, oz = TO_ECEF.transform(frame.lon, frame.lat, frame.alt)
    px, py, pz = TO_ECEF.transform(lon, lat, h)
    phi, lam = np.radians(frame.lat), np.radians(frame.lon)
    d = np.array([px - ox, py - oy, pz - oz])
    east = -np.sin(lam) * d[0] + np.cos(lam) * d[1]
    north = (-np.sin(phi) * np.cos(lam) * d[0] - np.sin(phi) * np.sin(lam) * d[1]
             + np.cos(phi) * d[2])  # fmt: skip
    assert np.max(np.abs(east - enu[0])) < 1e-3
    assert np.max(np.abs(north - enu[1])) < 1e-3
    back = np.array(frame.from_geodetic(lat, lon, h))
    assert np.max(np.abs(back - enu)) < 1e-3
