"""Heights above mean sea level -> above the WGS84 ellipsoid: the EGM96 geoid.

MISB metadata gives many heights above mean sea level, which MISB defines
as the EGM96 geoid; the node works above the ellipsoid. The undulation N
(ellipsoid height = MSL height + N) comes from NGA's EGM96 grid at 15' as
PROJ distributes it (`egm96_15.gtx`: Debian's `proj-data`, which the
Makefile installs), read here and interpolated bilinearly. Against NGA's
own spherical-harmonic test values the interpolation is within 6 cm
(tests/unit/test_geoid.py); EGM96 itself is within about a metre of the
true geoid in most places.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

GRID_NAME = "egm96_15.gtx"
_HEADER = np.dtype([("lat0", ">f8"), ("lon0", ">f8"), ("dlat", ">f8"), ("dlon", ">f8"),
                    ("rows", ">i4"), ("cols", ">i4")])  # fmt: skip


def grid_candidates() -> list[Path]:
    """Where PROJ's data lives on this machine, in PROJ's own order of preference."""
    folders = [os.environ.get("PROJ_DATA"), os.environ.get("PROJ_LIB"), "/usr/share/proj",
               "/usr/local/share/proj"]  # fmt: skip
    try:
        from pyproj import datadir

        folders.append(datadir.get_data_dir())
    except ImportError:
        pass
    return [Path(folder) / GRID_NAME for folder in folders if folder]


class Geoid:
    """EGM96 undulation (m) at any latitude and longitude, from a GTX grid."""

    def __init__(self, path: str | Path):
        raw = Path(path).read_bytes()
        header = np.frombuffer(raw, _HEADER, count=1)[0]
        rows, cols = int(header["rows"]), int(header["cols"])
        values = np.frombuffer(raw, ">f4", count=rows * cols, offset=_HEADER.itemsize)
        self.path = Path(path)
        self.lat0, self.lon0 = float(header["lat0"]), float(header["lon0"])
        self.dlat, self.dlon = float(header["dlat"]), float(header["dlon"])
        self.grid = values.astype(np.float64).reshape(rows, cols)
        # A grid that covers the whole circle wraps: the column after the last is the first.
        self._wraps = abs(cols * self.dlon - 360.0) < 1e-9

    @classmethod
    def find(cls) -> Geoid:
        """The grid from PROJ's data folders; OSError naming where it looked if none."""
        for path in grid_candidates():
            if path.is_file():
                return cls(path)
        looked = ", ".join(str(p) for p in grid_candidates())
        raise OSError(f"EGM96 grid {GRID_NAME} not found (looked in {looked}); "
                      "install Debian's proj-data or set PROJ_DATA")  # fmt: skip

    def undulation(self, lat, lon):
        """N = ellipsoid height - MSL height, m; arrays or scalars in, the same out."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        rows, cols = self.grid.shape
        y = np.clip((lat - self.lat0) / self.dlat, 0.0, rows - 1.0)
        x = ((lon - self.lon0) % 360.0) / self.dlon
        if not self._wraps:
            x = np.clip(x, 0.0, cols - 1.0)
        y0 = np.minimum(np.floor(y).astype(np.int64), rows - 2)
        x0 = np.floor(x).astype(np.int64)
        fy, fx = y - y0, x - x0
        x0 = np.minimum(x0, cols - 1)
        x1 = (x0 + 1) % cols if self._wraps else np.minimum(x0 + 1, cols - 1)
        g = self.grid
        south = g[y0, x0] * (1 - fx) + g[y0, x1] * fx
        north = g[y0 + 1, x0] * (1 - fx) + g[y0 + 1, x1] * fx
        result = south * (1 - fy) + north * fy
        return float(result) if result.ndim == 0 else result

    def ellipsoid_height(self, lat, lon, msl_height):
        height = np.asarray(msl_height, dtype=np.float64) + self.undulation(lat, lon)
        return float(height) if height.ndim == 0 else height
