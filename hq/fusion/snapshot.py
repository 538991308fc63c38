"""Published global tracks as columns: what `Fusion.tracks` returns and ingest stores.

A batch changes hundreds of global tracks; describing them as one table of
arrays (a class vote for all of them in one `np.add.at` over the links)
costs no Python object per track. `GlobalTrack` objects are made from a row
only where a caller asks for them (`Fusion.snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    class_probabilities: dict[TargetClass, float] | None = None
    count: int = 1
    measured: float = -np.inf  # UTC s of the newest detection in the state
    quality: float = 1.0


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
    # The sources' class probabilities pooled (`class_beliefs`): (n, len(CLASSES)).
    class_p: np.ndarray = field(default_factory=lambda: np.empty((0, len(CLASSES))))
    count: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # (n,) objects
    measured: np.ndarray = field(default_factory=lambda: np.empty(0))  # (n,) newest detection
    quality: np.ndarray = field(default_factory=lambda: np.empty(0))  # (n,) existence, 0..1

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def track(self, k: int) -> GlobalTrack:
        return GlobalTrack(
            id=int(self.id[k]), time=float(self.time[k]), lat=float(self.lat[k]),
            lon=float(self.lon[k]), x=self.x[k].copy(), P=self.P[k].copy(),
            target_class=CLASSES[self.target_class[k]], status=WIRE_STATUSES[self.status[k]],
            sources=self.sources[k],
            class_probabilities={c: float(p) for c, p in zip(CLASSES, self.class_p[k].tolist(),
                                                             strict=True) if p > 0.0},
            count=int(self.count[k]), measured=float(self.measured[k]),
            quality=float(self.quality[k]),
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
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS}
        return cls(**arrays, sources=sum((p.sources for p in parts), ()))


_ARRAYS = ("id", "time", "lat", "lon", "x", "P", "target_class", "status", "class_p", "count",
           "measured", "quality")  # fmt: skip


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
    voters = _newest_per_node(links, row, link)
    beliefs = class_beliefs(links, *voters, slots.size)
    return GlobalTracks(
        id=global_tracks.gid[slots].copy(), time=global_tracks.t[slots].copy(),
        lat=geodetic[:, 0].copy(), lon=geodetic[:, 1].copy(), x=x,
        P=global_tracks.P[slots].copy(), target_class=chosen_class(beliefs),
        status=status, sources=_sources(global_tracks, links, slots, row, link, node_keys,
                                        coast_after),
        class_p=beliefs, count=_count(links, *voters, slots.size),
        measured=global_tracks.t_measured[slots].copy(),
        quality=existence(links, *voters, slots.size),
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


def _newest_per_node(links: LinkTable, row: np.ndarray,
                     link: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(row, link) of each node's newest track of each object: each node has one say. A
    node track it replaced (restarted under a new id) keeps its link for a while, but not
    its say."""
    order = np.lexsort((-links.t[link], links.node[link], row))  # newest first per node
    row, link = row[order], link[order]
    first = np.ones(row.size, bool)
    first[1:] = (row[1:] != row[:-1]) | (links.node[link][1:] != links.node[link][:-1])
    return row[first], link[first]


def class_beliefs(links: LinkTable, row: np.ndarray, link: np.ndarray, n: int) -> np.ndarray:
    """Each track's class probabilities (n, len(CLASSES)): its nodes' probabilities pooled,
    each node weighted by its track's quality over its position's standard deviation (a
    post that sees the object from closer, or at a finer resolution, locates it better and
    tells its class better). All zero for a track without a source."""
    sigma = np.sqrt(np.maximum(links.spread[link], 1e-6))  # m: sqrt(spread) is in m²
    weight = links.quality[link] / np.where(np.isfinite(sigma), sigma, np.inf)
    pooled = np.zeros((n, len(CLASSES)))
    np.add.at(pooled, row, links.class_p[link] * weight[:, None])
    total = pooled.sum(axis=1, keepdims=True)
    return np.divide(pooled, total, out=np.zeros_like(pooled), where=total > 0.0)


def chosen_class(beliefs: np.ndarray) -> np.ndarray:
    """The class with the most belief; unknown only where no source believes in any other."""
    known = beliefs.copy()
    known[:, UNKNOWN_CLASS] = 0.0
    return np.where(known.any(axis=1), np.argmax(known, axis=1), UNKNOWN_CLASS).astype(np.int64)


def _count(links: LinkTable, row: np.ndarray, link: np.ndarray, n: int) -> np.ndarray:
    """How many objects each track stands for: the most any of its nodes counts (a post
    that resolves a group counts its members; one that sees a blob, fewer)."""
    count = np.ones(n, np.int64)
    np.maximum.at(count, row, links.count[link])
    return count


def existence(links: LinkTable, row: np.ndarray, link: np.ndarray, n: int) -> np.ndarray:
    """Each track's existence probability from its nodes' (their tracks' quality), taken as
    independent evidence: 1 - prod(1 - q). Two posts that each half believe in an object
    make it likelier than either alone."""
    doubt = np.ones(n)
    np.multiply.at(doubt, row, 1.0 - np.clip(links.quality[link], 0.0, 1.0))
    return 1.0 - doubt


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
