"""What a target of each class can do, and the tracker's use of it.

A Kalman filter's gate is statistical: while a track coasts its covariance
grows, and after a long gap the gate may take in a detection that no target of
the track's kind could have reached, or whose update would throw the track's
velocity to something no such target can do (a track waiting at a warm rock
that takes a camel's blob 25 m away, and reads as driving at 13 m/s). The
class limits bound that:

* reach: a detection farther from where the track was last measured than the
  class's top speed covers in the time since (plus both positions' errors) is
  not this track's;
* acceleration: a detection whose update would change the track's velocity by
  more than the class's acceleration over that time (plus the velocity's own
  uncertainty) is not this track's;

such a detection stays free and starts a track of its own: a jump is a new
track, not a velocity. A track's velocity is clipped to its class's top speed,
and it coasts at most its class's coasting time.

Classes are codes into the limits table, one row per class, so that the
kernels index an array: row `c` of `limits` is (top speed m/s, acceleration
m/s², coasting time s).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.tracking.kalman import updated_one
from edge.tracking.table import CLASS, E_MEAS, N_MEAS, T_UPDATE, VAR_MEAS

CLASS_NAMES = ("unknown", "person", "animal", "vehicle")  # code = position
UNKNOWN = 0
MAX_SPEED, MAX_ACCELERATION, MAX_COAST = 0, 1, 2
# How many standard deviations of the positions' and velocity's errors a pair may
# exceed the physical bound by before it is refused: the bound is physics, the margin
# is the filter's uncertainty, so a real target is never refused for noise.
SIGMAS = 3.0


def limits_table(table) -> np.ndarray:
    """The config's `ClassLimitsTable` as the kernels' (classes, 3) array."""
    rows = [getattr(table, name) for name in CLASS_NAMES]
    return np.array([[r.max_speed, r.max_acceleration, r.max_coast_s] for r in rows], float)


def class_code(name: str) -> int:
    """The code of a class name; an unknown name is "unknown"."""
    return CLASS_NAMES.index(name) if name in CLASS_NAMES else UNKNOWN


@njit(cache=True, inline="always")
def possible(x, P, floats, ints, i, z, R, j, d2, t, limits):
    """Whether a target of track i's class could have made detection j (at Mahalanobis
    d² from it): within reach and acceleration. The standard deviations are bounded
    by traces (never smaller than the largest eigenvalue), so a doubt favours the pair."""
    c = ints[CLASS, i]
    elapsed = max(t - floats[T_UPDATE, i], 0.0)
    # Reach: from where the track was last measured, at the class's top speed.
    de = z[j, 0] - floats[E_MEAS, i]
    dn = z[j, 1] - floats[N_MEAS, i]
    spread = SIGMAS * np.sqrt(floats[VAR_MEAS, i] + R[j, 0, 0] + R[j, 1, 1])
    reach = limits[c, MAX_SPEED] * elapsed + spread
    if de * de + dn * dn > reach * reach:
        return False
    # Acceleration: the velocity this update would give, against the predicted one. The
    # change K_v ν is at most the velocity's std times sqrt(d²) (the posterior velocity
    # covariance stays positive), so most pairs need no update to pass.
    v_std = np.sqrt(P[2, 2, i] + P[3, 3, i])
    allowed = limits[c, MAX_ACCELERATION] * elapsed + SIGMAS * v_std
    if v_std * v_std * d2 <= allowed * allowed:
        return True
    u = updated_one(x, P, i, z, R, j)
    dv0 = u[2] - x[2, i]
    dv1 = u[3] - x[3, i]
    return dv0 * dv0 + dv1 * dv1 <= allowed * allowed


@njit(cache=True)
def clip_speed(x, ints, n, limits):
    """Scale down each track's velocity that exceeds its class's top speed."""
    for i in range(n):
        top = limits[ints[CLASS, i], MAX_SPEED]
        speed = np.hypot(x[2, i], x[3, i])
        if speed > top:
            x[2, i] *= top / speed
            x[3, i] *= top / speed

