"""The EGM96 undulation against NGA's published test values (spherical-harmonic synthesis
of the model to degree 360) and against pyproj's own geoid transformation."""

import numpy as np
import pytest
from pyproj import Transformer, datadir

from edge.geoid import Geoid

# NGA's EGM96 test points: latitude, longitude (0-360), undulation m.
NGA_TEST_VALUES = [(38.6281550, 269.7791550, -31.628), (-14.6212170, 305.0211140, -2.969),
                   (46.8743190, 102.4487290, -43.575), (-23.6174460, 133.8747120, 15.868),
                   (38.6254730, 359.9995000, 50.068), (-0.4667440, 0.0023000, 17.329)]


@pytest.fixture(scope="module")
def geoid():
    return Geoid.find()


def test_within_six_centimetres_of_ngas_test_values(geoid):
    for lat, lon, expected in NGA_TEST_VALUES:
        assert geoid.undulation(lat, lon) == pytest.approx(expected, abs=0.06), (lat, lon)


def test_agrees_with_pyproj_everywhere(geoid):
    datadir.append_data_dir("/usr/share/proj")
    to_msl = Transformer.from_crs("EPSG:4979", "EPSG:4326+5773", always_xy=True)
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(-89.9, 89.9, 2000), rng.uniform(-180.0, 180.0, 2000)
    _, _, msl = to_msl.transform(lon, lat, np.zeros_like(lat))
    np.testing.assert_allclose(geoid.undulation(lat, lon), -msl, atol=1e-3)
    assert geoid.ellipsoid_height(22.8, 14.1, 600.0) == pytest.approx(600.0 - to_msl.transform(
        14.1, 22.8, 0.0)[2], abs=1e-3)


def test_a_missing_grid_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("PROJ_DATA", str(tmp_path))
    assert Geoid.find() is not None  # /usr/share/proj still has it
    with pytest.raises(OSError):
        Geoid(tmp_path / "egm96_15.gtx")
