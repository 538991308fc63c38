"""The tables HQ fusion keeps between batches, as structure of arrays.

- `GlobalTable`: the global tracks, one slot (row) each.
- `LinkTable`: the links node track -> global track, one slot each, found by
  (node index, node-local track id).

Classes and statuses are stored as small integers: a class as its index in
`CLASSES`, a node track's wire status as its index in `WIRE_STATUSES`
(`WIRE_*`), and a global track's slot has a status of its own (`GLOBAL_*`;
not the edge tracker's track states, which are other numbers).
"""

from __future__ import annotations

import numpy as np

from wire.messages import TargetClass, TrackStatus

CLASSES = tuple(TargetClass)  # a class is stored as its index in this tuple
UNKNOWN_CLASS = CLASSES.index(TargetClass.UNKNOWN)
WIRE_STATUSES = tuple(TrackStatus)  # likewise a node track's status
WIRE_TENTATIVE = WIRE_STATUSES.index(TrackStatus.TENTATIVE)
WIRE_CONFIRMED = WIRE_STATUSES.index(TrackStatus.CONFIRMED)
WIRE_COASTING = WIRE_STATUSES.index(TrackStatus.COASTING)
WIRE_ENDED = WIRE_STATUSES.index(TrackStatus.ENDED)

# The status of a global track's slot.
GLOBAL_FREE = 0
GLOBAL_HIDDEN = 1  # a node track waiting to merge into a global track: not published
GLOBAL_CONFIRMED = 2  # published
GLOBAL_COASTING = 3  # published; no node has seen the object for coast_after seconds


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
            # The newest detection any source's state took in: a state much newer is predicted.
            "t_measured": ((), np.float64, -np.inf),
            "up": ((), np.float64, 0.0),
            "gid": ((), np.int64, -1),  # public id; -1 while hidden
            "status": ((), np.int8, GLOBAL_FREE),
        })  # fmt: skip
        self.links: dict[int, set[int]] = {}  # slot -> link slots

    def add(self, x: np.ndarray, P: np.ndarray, time: float, up: float, status: int) -> int:
        """A new global track with a node track's state."""
        slot = self.allocate()
        self.x[slot], self.P[slot] = x, P
        self.t[slot] = self.t_fresh[slot] = time
        self.up[slot] = up
        self.status[slot] = status
        self.links[slot] = set()
        return slot

    def release(self, slot: int) -> None:
        super().release(slot)
        self.links.pop(slot, None)

    def published(self) -> np.ndarray:
        return np.flatnonzero(self.status[: self.used] >= GLOBAL_CONFIRMED)


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
            "class_p": ((len(CLASSES),), np.float64, 0.0),  # the node's class probabilities
            "count": ((), np.int64, 1),  # how many objects the node track stands for
            "spread": ((), np.float64, np.inf),  # sqrt(det) of its position covariance, m²
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
