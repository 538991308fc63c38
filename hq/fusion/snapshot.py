"""Published global tracks as columns: what `Fusion.tracks` returns and ingest stores.

A batch changes hundreds of global tracks; describing them as one table of
arrays (a class vote for all of them in one `np.add.at` over the links)
costs no Python object per track. `GlobalTrack` objects are made from a row
only where a caller asks for them (`Fusion.snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hq.fusion.tables import (
    CLASSES,
    GLOBAL_COASTING,
    UNKNOWN_CLASS,
    WIRE_COASTING,
    WIRE_CONFIRMED,
    WIRE_ENDED,
    WIRE_STATUSES,
    GlobalTable,
    LinkTable,
)
from wire.geo import EnuFrame, enu_to_geodetic_batch
from wire.messages import TargetClass, TrackStatus

Sources = tuple[tuple[str, int], ...]  # (node key "site/node", node-local track id)


@dataclass(frozen=True)
class GlobalTrack:
    """One fused track as `Fusion.snapshot` returns it (copies, safe to keep)."""

    id: int
    time: float  # UTC s of the state
    lat: float
    lon: float
    x: np.ndarray  # (4,) [e, n, ve, vn] in the fusion's ENU frame (`Fusion.frame`)
    P: np.ndarray  # (4, 4)
    target_class: TargetClass
    status: TrackStatus
    sources: Sources


@dataclass(frozen=True, eq=False)
class GlobalTracks:
    """Global tracks as columns, one row per track; states in the fusion's ENU frame."""

    id: np.ndarray  # (n,) int64 public ids
    time: np.ndarray  # (n,) UTC s of each state
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray
    x: np.ndarray  # (n, 4)
    P: np.ndarray  # (n, 4, 4)
    target_class: np.ndarray  # (n,) index into CLASSES
    status: np.ndarray  # (n,) index into WIRE_STATUSES
    sources: tuple[Sources, ...]

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def track(self, k: int) -> GlobalTrack:
        return GlobalTrack(
            id=int(self.id[k]), time=float(self.time[k]), lat=float(self.lat[k]),
            lon=float(self.lon[k]), x=self.x[k].copy(), P=self.P[k].copy(),
            target_class=CLASSES[self.target_class[k]], status=WIRE_STATUSES[self.status[k]],
            sources=self.sources[k],
        )  # fmt: skip

    @classmethod
    def empty(cls) -> GlobalTracks:
        none = np.empty(0, np.int64)
        return cls(none, *(np.empty(0) for _ in range(3)), np.empty((0, 4)),
                   np.empty((0, 4, 4)), none, none, ())  # fmt: skip

    @classmethod
    def concat(cls, parts: list[GlobalTracks]) -> GlobalTracks:
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else cls.empty()
        arrays = [np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS]
        return cls(*arrays, sum((p.sources for p in parts), ()))


_ARRAYS = ("id", "time", "lat", "lon", "x", "P", "target_class", "status")


def describe(global_tracks: GlobalTable, links: LinkTable, slots: np.ndarray, frame: EnuFrame,
             node_keys: list[str], coast_after: float,
             ended: bool = False) -> GlobalTracks:  # fmt: skip
    """The global tracks at `slots` (in that order), as they stand; ENDED if `ended`."""
    if slots.size == 0:
        return GlobalTracks.empty()
    x, up = global_tracks.x[slots], global_tracks.up[slots]
    geodetic = enu_to_geodetic_batch(frame.origin, np.column_stack([x[:, 0], x[:, 1], up]))
    if ended:
        status = np.full(slots.size, WIRE_ENDED, np.int64)
    else:
        coasting = global_tracks.status[slots] == GLOBAL_COASTING
        status = np.where(coasting, WIRE_COASTING, WIRE_CONFIRMED).astype(np.int64)
    row, link = _links_of(global_tracks, links, slots)
    return GlobalTracks(
        id=global_tracks.gid[slots].copy(), time=global_tracks.t[slots].copy(),
        lat=geodetic[:, 0].copy(), lon=geodetic[:, 1].copy(), x=x,
        P=global_tracks.P[slots].copy(), target_class=_vote(links, row, link, slots.size),
        status=status, sources=_sources(global_tracks, links, slots, row, link, node_keys,
                                        coast_after),
    )  # fmt: skip


def _links_of(global_tracks: GlobalTable, links: LinkTable,
              slots: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """(row in `slots`, link slot) for every link that points at one of `slots`."""
    row_of_slot = np.full(global_tracks.used, -1, np.int64)
    row_of_slot[slots] = np.arange(slots.size)
    owner = links.global_slot[: links.used]
    link = np.flatnonzero(owner >= 0)
    row = row_of_slot[owner[link]]
    keep = row >= 0
    return row[keep], link[keep]


def _vote(links: LinkTable, row: np.ndarray, link: np.ndarray, n: int) -> np.ndarray:
    """Each track's class: the one with the most source quality behind it; unknown only if
    no source says anything else. Each node votes once, with its newest track of the
    object: a node track it replaced (restarted under a new id) keeps its link for a
    while, but not its say."""
    order = np.lexsort((-links.t[link], links.node[link], row))  # newest first per node
    row, link = row[order], link[order]
    first = np.ones(row.size, bool)
    first[1:] = (row[1:] != row[:-1]) | (links.node[link][1:] != links.node[link][:-1])
    row, link = row[first], link[first]
    votes = np.zeros((n, len(CLASSES)))
    np.add.at(votes, (row, links.target_class[link]), links.quality[link])
    votes[:, UNKNOWN_CLASS] = 0.0
    return np.where(votes.any(axis=1), np.argmax(votes, axis=1), UNKNOWN_CLASS).astype(np.int64)


def _sources(global_tracks: GlobalTable, links: LinkTable, slots: np.ndarray,
             row: np.ndarray, link: np.ndarray, node_keys: list[str],
             coast_after: float) -> tuple[Sources, ...]:  # fmt: skip
    """The node tracks that fed each global track within coast_after of its state, each
    track's sorted by (node key, local id)."""
    fresh = links.t[link] >= global_tracks.t[slots[row]] - coast_after
    row, link = row[fresh], link[fresh]
    node, local_id = links.node[link], links.local_id[link]
    key_rank = np.argsort(np.argsort(np.array(node_keys)))  # node index -> its key's place
    order = np.lexsort((local_id, key_rank[node], row))
    pairs = list(zip([node_keys[k] for k in node[order].tolist()], local_id[order].tolist(),
                     strict=True))  # fmt: skip
    bounds = np.searchsorted(row[order], np.arange(slots.size + 1)).tolist()
    return tuple(tuple(pairs[start:end])
                 for start, end in zip(bounds[:-1], bounds[1:], strict=True))  # fmt: skip
