"""Step 1 of fusion: a TrackBatch's usable tracks as `NodeRows`, in HQ's ENU frame.

A node tracks in the ENU frame of its post and HQ fuses in one fixed ENU frame
of its own. Both are affine images of ECEF, so a node's ENU point maps to HQ's
by one fixed matrix and offset (`frame_transform`): exact, with no WGS84 round
trip per track. A node's ground track lies in its own horizontal plane (up = 0)
and HQ keeps east and north; the up coordinate in HQ's frame (the Earth's
curvature drop, about 31 m at 20 km) rides along only to turn states back into
latitude and longitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from hq.fusion.tables import CLASSES, UNKNOWN_CLASS, WIRE_STATUSES
from wire.geo import EnuFrame, enu_axes
from wire.messages import Track, TrackStatus


def frame_transform(node_origin, hq: EnuFrame) -> tuple[np.ndarray, np.ndarray]:
    """(M, c) with HQ ENU = M @ node ENU + c, for the node frame anchored at node_origin."""
    node_axes = np.array(enu_axes(node_origin[0], node_origin[1]))  # rows: e, n, u in ECEF
    hq_axes = np.array(enu_axes(hq.lat, hq.lon))
    offset = np.array(hq.from_geodetic(*node_origin), dtype=np.float64)
    return hq_axes @ node_axes.T, offset


@dataclass
class NodeRows:
    """Node tracks in HQ's frame: x (n, 4), P (n, 4, 4), and per-track columns."""

    local_id: np.ndarray  # (n,) int64
    time: np.ndarray  # (n,) UTC s of each state
    x: np.ndarray
    P: np.ndarray
    up: np.ndarray  # (n,) HQ up coordinate of the position, for latitude and longitude
    target_class: np.ndarray  # (n,) index into CLASSES
    quality: np.ndarray  # (n,)
    status: np.ndarray  # (n,) index into WIRE_STATUSES
    class_p: np.ndarray  # (n, len(CLASSES)) the node's belief in each class
    count: np.ndarray  # (n,) int64 objects the track stands for
    measured: np.ndarray  # (n,) UTC s of the newest detection in the state; -inf: none

    def __len__(self) -> int:
        return int(self.local_id.shape[0])

    def take(self, which) -> NodeRows:
        return NodeRows(*(np.ascontiguousarray(getattr(self, name)[which])
                          for name in self.__dataclass_fields__))  # fmt: skip


def read_rows(tracks: list[Track], M: np.ndarray, c: np.ndarray,
              unknown_velocity_variance: float,
              unstated_class_belief: float = 1.0) -> tuple[NodeRows, int, int]:  # fmt: skip
    """The batch's usable tracks in HQ's frame, with the counts rejected and without velocity.

    A track is rejected for a non-finite time or position, a position covariance
    that is not positive definite, or a local id already seen in the batch. A
    velocity (or its covariance) that is unusable becomes "unknown": zero with
    a large variance, so that it neither gates nor moves a fused velocity.
    """
    n = len(tracks)
    numbers = np.array(
        [(t.track_id, t.time, *t.position_enu, *t.velocity_enu,
          *t.position_covariance[0], *t.position_covariance[1],
          *t.velocity_covariance[0], *t.velocity_covariance[1], t.quality) for t in tracks],
        dtype=np.float64,
    ).reshape(n, 15)  # fmt: skip
    # From the ints themselves: a float64 holds integers exactly only up to 2**53.
    local_id = np.fromiter((t.track_id for t in tracks), np.int64, count=n)
    x, P, up, usable, no_velocity = node_states(numbers, M, c, unknown_velocity_variance)
    usable &= _first_occurrence(local_id)
    target_class = np.array([CLASSES.index(t.target_class) for t in tracks], np.int64)
    status = np.array([WIRE_STATUSES.index(t.status) for t in tracks], np.int64)
    count, measured = _counts_and_measured(tracks, numbers[:, 1], status)
    rows = NodeRows(
        local_id=local_id, time=numbers[:, 1], x=x, P=P, up=up, target_class=target_class,
        quality=numbers[:, 14], status=status,
        class_p=class_beliefs(tracks, target_class, unstated_class_belief),
        count=count, measured=measured,
    )  # fmt: skip
    return rows.take(usable), int(n - usable.sum()), int((no_velocity & usable).sum())


def class_beliefs(tracks: list[Track], target_class: np.ndarray,
                  unstated: float = 1.0) -> np.ndarray:  # fmt: skip
    """Each track's class probabilities as a row over CLASSES: those the node sent, or (a
    sender without them) `unstated` on its `target_class` (indices) and the rest on
    unknown."""
    beliefs = np.zeros((len(tracks), len(CLASSES)))
    beliefs[:, UNKNOWN_CLASS] = 1.0 - unstated
    beliefs[np.arange(len(tracks)), target_class] += unstated
    for k in [k for k, t in enumerate(tracks) if t.class_probabilities]:
        beliefs[k] = 0.0
        for name, p in tracks[k].class_probabilities.items():
            beliefs[k, CLASSES.index(name)] = p
        beliefs[k] /= beliefs[k].sum() or 1.0
    return beliefs


def _counts_and_measured(tracks: list[Track], time: np.ndarray,
                         status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each track's count, and when its state last took in a detection: `last_measured`,
    or for a sender that does not say, its state time unless it is coasting (a
    prediction, never measured here: -inf)."""
    pairs = [(t.count, math.nan if t.last_measured is None else t.last_measured)
             for t in tracks]  # fmt: skip
    numbers = np.array(pairs, np.float64).reshape(len(tracks), 2)
    unsaid = np.isnan(numbers[:, 1])
    guessed = np.where(status == WIRE_STATUSES.index(TrackStatus.COASTING), -np.inf, time)
    return numbers[:, 0].astype(np.int64), np.where(unsaid, guessed, numbers[:, 1])


def position_spread(P: np.ndarray) -> np.ndarray:
    """sqrt(det) of each (n, 4, 4) state's position block, m²: the area its position is
    known within (up to a constant), small where the post's view resolves it finely."""
    a, b, d = P[:, 0, 0], P[:, 0, 1], P[:, 1, 1]
    return np.sqrt(np.maximum(a * d - b * b, 0.0))


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    first = np.zeros(ids.shape[0], bool)
    first[np.unique(ids, return_index=True)[1]] = True
    return first


@njit(cache=True)
def node_states(numbers, M, c, unknown_velocity_variance):
    """Node tracks' states in HQ's frame from their wire numbers, one row each.

    `numbers` (n, 15) holds per track: id, time, position e n, velocity e n, position
    covariance (2, 2) and velocity covariance (2, 2) row-major, quality. HQ ENU = M @ node
    ENU + c (`frame_transform`); a ground track's up is 0 in its node's frame. Each
    covariance is made symmetric first. Returns x (n, 4), P (n, 4, 4), the HQ up coordinate
    (n,), whether the track is usable (finite time and position, positive definite position
    covariance) and whether its velocity is unknown (not finite, or its covariance not
    positive definite): then zero, with `unknown_velocity_variance` on the diagonal.
    """
    n = numbers.shape[0]
    x = np.zeros((n, 4))
    P = np.zeros((n, 4, 4))
    up = np.empty(n)
    usable = np.empty(n, np.bool_)
    no_velocity = np.empty(n, np.bool_)
    for k in range(n):
        row = numbers[k]
        finite = True
        for i in (1, 2, 3, 6, 7, 8, 9):
            finite = finite and math.isfinite(row[i])
        usable[k] = finite and _symmetric_positive_definite(row[6:10], P[k, :2, :2])
        finite = True
        for i in (4, 5, 10, 11, 12, 13):
            finite = finite and math.isfinite(row[i])
        velocity_known = _symmetric_positive_definite(row[10:14], P[k, 2:, 2:]) and finite
        no_velocity[k] = not velocity_known
        ve, vn = (row[4], row[5]) if velocity_known else (0.0, 0.0)
        if not velocity_known:
            P[k, 2, 2] = P[k, 3, 3] = unknown_velocity_variance
            P[k, 2, 3] = P[k, 3, 2] = 0.0
        x[k, 0] = M[0, 0] * row[2] + M[0, 1] * row[3] + c[0]
        x[k, 1] = M[1, 0] * row[2] + M[1, 1] * row[3] + c[1]
        x[k, 2] = M[0, 0] * ve + M[0, 1] * vn
        x[k, 3] = M[1, 0] * ve + M[1, 1] * vn
        up[k] = M[2, 0] * row[2] + M[2, 1] * row[3] + c[2]
        _rotate_block(M, P[k, :2, :2])
        _rotate_block(M, P[k, 2:, 2:])
    return x, P, up, usable, no_velocity


@njit(cache=True, inline="always")
def _symmetric_positive_definite(entries, out):
    """out = the symmetric part of the 2x2 matrix of row-major `entries`; whether it is
    positive definite (False for NaN)."""
    a, b, d = entries[0], 0.5 * (entries[1] + entries[2]), entries[3]
    out[0, 0], out[0, 1], out[1, 0], out[1, 1] = a, b, b, d
    return a > 0.0 and a * d - b * b > 0.0


@njit(cache=True, inline="always")
def _rotate_block(M, A):
    """A = J A J' in place for the (2, 2) symmetric A, J = M[:2, :2]."""
    a, b, d = A[0, 0], A[0, 1], A[1, 1]
    j00, j01, j10, j11 = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
    # (J A)[i, :] then times J' on the right.
    r00, r01 = j00 * a + j01 * b, j00 * b + j01 * d
    r10, r11 = j10 * a + j11 * b, j10 * b + j11 * d
    A[0, 0] = r00 * j00 + r01 * j01
    A[0, 1] = A[1, 0] = r00 * j10 + r01 * j11
    A[1, 1] = r10 * j10 + r11 * j11
