"""The simulated ground: flat at the post's height above the WGS84 ellipsoid.

In the post's ENU frame that surface falls away below the tangent plane (about
0.3 m at 2 km, 8 m at 10 km), so ground targets and the camera's footprint sit
at `ground_up(frame, east, north)`, not at up = 0. The edge's georeferencing
intersects its rays with the same surface, so the two agree to millimetres.
"""

from __future__ import annotations

import numpy as np

from wire.geo import EnuFrame


def ground_up(frame: EnuFrame, east, north):
    """ENU height of the ground (ellipsoid height `frame.alt`) below (east, north)."""
    lat, lon, _ = frame.to_geodetic(east, north, np.zeros_like(np.asarray(east, float)))
    # The ellipsoid normal at (east, north) tilts by distance / radius (under a milliradian
    # at post scale), so this point lies within micrometres of straight below.
    return frame.from_geodetic(lat, lon, np.full_like(lat, frame.alt))[2]
