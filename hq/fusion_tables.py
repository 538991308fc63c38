"""The data HQ fusion works on, as structure of arrays.

- `NodeRows`: the usable tracks of one TrackBatch, in HQ's ENU frame.
- `GlobalTable`: the global tracks, one slot (row) each.
- `LinkTable`: the links node track -> global track, one slot each, found by
  (node index, node-local track id).

A node tracks in the ENU frame of its post and HQ fuses in one fixed ENU frame
of its own. Both are affine images of ECEF, so a node's ENU point maps to HQ's
by one fixed matrix and offset (`frame_transform`): exact, with no WGS84 round
trip per track. A node's ground track lies in its own horizontal plane (up = 0)
and HQ keeps east and north; the up coordinate in HQ's frame (the Earth's
curvature drop, about 31 m at 20 km) rides along only to turn states back into
latitude and longitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hq import fusion_kernels as kernels
from wire.geo import EnuFrame, enu_axes
from wire.messages import TargetClass, Track, TrackStatus

CLASSES = tuple(TargetClass)  # a class is stored as its index in this tuple
UNKNOWN_CLASS = CLASSES.index(TargetClass.UNKNOWN)
WIRE_STATUSES = tuple(TrackStatus)  # likewise a node track's status

# The status of a global track's slot.
FREE = 0
HIDDEN = 1  # a node track waiting to merge into a global track: not published
CONFIRMED = 2
COASTING = 3


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

    def __len__(self) -> int:
        return int(self.local_id.shape[0])

    def take(self, which) -> NodeRows:
        return NodeRows(*(np.ascontiguousarray(getattr(self, name)[which])
                          for name in self.__dataclass_fields__))  # fmt: skip


def read_rows(tracks: list[Track], M: np.ndarray, c: np.ndarray,
              unknown_velocity_variance: float) -> tuple[NodeRows, int, int]:  # fmt: skip
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
    local_id = numbers[:, 0].astype(np.int64)
    x, P, up, usable, no_velocity = kernels.node_states(numbers, M, c, unknown_velocity_variance)
    usable &= _first_occurrence(local_id)
    rows = NodeRows(
        local_id=local_id, time=numbers[:, 1], x=x, P=P, up=up,
        target_class=np.array([CLASSES.index(t.target_class) for t in tracks], np.int64),
        quality=numbers[:, 14],
        status=np.array([WIRE_STATUSES.index(t.status) for t in tracks], np.int64),
    )  # fmt: skip
    return rows.take(usable), int(n - usable.sum()), int((no_velocity & usable).sum())


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    first = np.zeros(ids.shape[0], bool)
    first[np.unique(ids, return_index=True)[1]] = True
    return first


class Slots:
    """Same-length column arrays with spare capacity; released slots are reused."""

    def __init__(self, columns: dict, capacity: int = 256):
        self._columns = columns  # name -> (shape of one slot, dtype, value of an empty slot)
        self._free: list[int] = []
        self.used = 0  # slots at or above this index were never handed out
        for name, (shape, dtype, empty) in columns.items():
            setattr(self, name, np.full((capacity, *shape), empty, dtype))

    def allocate(self) -> int:
        if self._free:
            return self._free.pop()
        capacity = getattr(self, next(iter(self._columns))).shape[0]
        if self.used == capacity:
            for name, (shape, dtype, empty) in self._columns.items():
                grown = np.full((2 * capacity, *shape), empty, dtype)
                grown[:capacity] = getattr(self, name)
                setattr(self, name, grown)
        self.used += 1
        return self.used - 1

    def release(self, slot: int) -> None:
        for name, (_, _, empty) in self._columns.items():
            getattr(self, name)[slot] = empty
        self._free.append(slot)


class GlobalTable(Slots):
    """Global tracks: state x, P at time t in HQ's frame, public id, status."""

    def __init__(self):
        super().__init__({
            "x": ((4,), np.float64, 0.0),
            "P": ((4, 4), np.float64, 0.0),
            "t": ((), np.float64, -np.inf),  # time of the state
            "t_fresh": ((), np.float64, -np.inf),  # latest time a node saw the object itself
            "up": ((), np.float64, 0.0),
            "gid": ((), np.int64, -1),  # public id; -1 while hidden
            "status": ((), np.int8, FREE),
        })  # fmt: skip
        self.links: dict[int, set[int]] = {}  # slot -> link slots

    def add(self, rows: NodeRows, i: int, status: int) -> int:
        """A new global track with node track row i's state."""
        slot = self.allocate()
        self.x[slot], self.P[slot] = rows.x[i], rows.P[i]
        self.t[slot] = self.t_fresh[slot] = rows.time[i]
        self.up[slot] = rows.up[i]
        self.status[slot] = status
        self.links[slot] = set()
        return slot

    def release(self, slot: int) -> None:
        super().release(slot)
        self.links.pop(slot, None)

    def published(self) -> np.ndarray:
        return np.flatnonzero(self.status[: self.used] >= CONFIRMED)


class LinkTable(Slots):
    """Links node track -> global track with their hysteresis counters."""

    def __init__(self):
        super().__init__({
            "global_slot": ((), np.int64, -1),
            "node": ((), np.int64, -1),
            "local_id": ((), np.int64, -1),
            "t": ((), np.float64, -np.inf),  # time of the node track's latest update
            "target_class": ((), np.int64, UNKNOWN_CLASS),
            "quality": ((), np.float64, 0.0),
            "misses": ((), np.int64, 0),  # consecutive gate failures against global_slot
            "candidate": ((), np.int64, -1),  # the global track it may merge or switch into
            "streak": ((), np.int64, 0),  # consecutive updates that favoured the candidate
        })  # fmt: skip
        self.index: dict[tuple[int, int], int] = {}

    def lookup(self, node: int, local_ids: np.ndarray) -> np.ndarray:
        index = self.index
        return np.array([index.get((node, i), -1) for i in local_ids.tolist()], np.int64)

    def add(self, node: int, local_id: int, global_slot: int) -> int:
        slot = self.allocate()
        self.global_slot[slot], self.node[slot], self.local_id[slot] = global_slot, node, local_id
        self.index[(node, local_id)] = slot
        return slot

    def release(self, slot: int) -> None:
        self.index.pop((int(self.node[slot]), int(self.local_id[slot])), None)
        super().release(slot)
