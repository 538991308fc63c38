"""wire.geo against pyproj, to millimetres at border-post scale."""

import numpy as np
import pytest
from pyproj import Transformer

from wire.geo import (
    EnuFrame,
    ecef_to_geodetic,
    ecef_to_geodetic_batch,
    enu_to_geodetic_batch,
    geodetic_to_ecef,
    geodetic_to_ecef_batch,
    geodetic_to_enu_batch,
)

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


def topocentric(frame: EnuFrame) -> Transformer:
    """pyproj's own geodetic -> ENU: ECEF, then PROJ's topocentric conversion."""
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lat_0={frame.lat!r} +lon_0={frame.lon!r} +h_0={frame.alt!r}"
    )


def test_batch_kernels_geodetic_ecef_match_pyproj():
    rng = np.random.default_rng(2)
    geodetic = np.column_stack([
        rng.uniform(-89.9, 89.9, 2000), rng.uniform(-180, 180, 2000),
        rng.uniform(-500, 30_000, 2000),
    ])  # fmt: skip
    ecef = geodetic_to_ecef_batch(geodetic)
    expected = np.column_stack(TO_ECEF.transform(geodetic[:, 1], geodetic[:, 0], geodetic[:, 2]))
    assert np.max(np.abs(ecef - expected)) < 1e-6
    back = ecef_to_geodetic_batch(expected)
    assert np.max(np.abs(back[:, :2] - geodetic[:, :2])) < 1e-9  # degrees: about 0.1 mm
    assert np.max(np.abs(back[:, 2] - geodetic[:, 2])) < 1e-4


@pytest.mark.parametrize("origin", [(22.694, 14.180, 700.0), (-33.9, 151.2, 40.0),
                                    (64.1, -21.9, 15.0)])  # fmt: skip
def test_batch_kernels_enu_match_pyproj_topocentric_to_100_km(origin):
    frame = EnuFrame(*origin)
    rng = np.random.default_rng(3)
    # Points up to 100 km away from the post, from below it to well above the drones.
    distance = 100_000 * np.sqrt(rng.uniform(0, 1, 3000))
    bearing = rng.uniform(0, 2 * np.pi, 3000)
    enu = np.column_stack([distance * np.sin(bearing), distance * np.cos(bearing),
                           rng.uniform(-1000, 3000, 3000)])  # fmt: skip
    to_enu = topocentric(frame)

    geodetic = enu_to_geodetic_batch(frame.origin, enu)
    again = np.column_stack(to_enu.transform(geodetic[:, 1], geodetic[:, 0], geodetic[:, 2]))
    assert np.max(np.abs(again - enu)) < 1e-3

    expected = np.column_stack(to_enu.transform(geodetic[:, 1], geodetic[:, 0], geodetic[:, 2]))
    assert np.max(np.abs(geodetic_to_enu_batch(frame.origin, geodetic) - expected)) < 1e-3


def test_batch_kernels_agree_with_the_numpy_api():
    frame = EnuFrame(22.694, 14.180, 700.0)
    rng = np.random.default_rng(4)
    enu = rng.uniform(-100_000, 100_000, size=(500, 3))
    enu[:, 2] = rng.uniform(-100, 3000, 500)
    geodetic = np.column_stack(frame.to_geodetic(*enu.T))
    difference = np.abs(enu_to_geodetic_batch(frame.origin, enu) - geodetic)
    assert np.max(difference[:, :2]) < 1e-10  # degrees: about 10 micrometres
    assert np.max(difference[:, 2]) < 1e-6
    back = np.column_stack(frame.from_geodetic(*geodetic.T))
    assert np.max(np.abs(geodetic_to_enu_batch(frame.origin, geodetic) - back)) < 1e-6
