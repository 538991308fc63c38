"""Step 6 of fusion, what one call of `Fusion.ingest` or `Fusion.tick` changed: `FusionUpdate`
and its `History`.

History has one row per node-track update that fusion used or kept, for the
store. Where the update went into a published global track, the row holds that
track's state right after it (`fused`); otherwise (a late update, one not yet
attributed, one that failed its gate) it holds the node's own estimate, so
that nothing a node said is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hq.fusion.rows import NodeRows
from hq.fusion.snapshot import GlobalTracks
from hq.fusion.tables import GlobalTable, LinkTable
from wire.geo import EnuFrame, enu_to_geodetic_batch


@dataclass(frozen=True)
class History:
    """Rows of history as structure of arrays; states in the fusion's ENU frame."""

    node: str | None  # "site/node" that sent the batch (None from tick)
    local_id: np.ndarray  # (n,) int64, the node's track id
    global_id: np.ndarray  # (n,) int64, -1 where not (yet) part of a published global track
    time: np.ndarray  # (n,) UTC s of the state
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray
    x: np.ndarray  # (n, 4)
    P: np.ndarray  # (n, 4, 4)
    fused: np.ndarray  # (n,) bool: the global track's state; False: the node's estimate
    late: np.ndarray  # (n,) bool: too old to fuse, kept here only

    def __len__(self) -> int:
        return int(self.local_id.shape[0])


@dataclass(frozen=True)
class FusionUpdate:
    """Public ids of the global tracks created, updated and ended, and the history rows."""

    created: list[int]
    updated: list[int]  # state or status changed; not those created or ended in the same call
    ended: list[int]
    merged: dict[int, int]  # an ended id -> the id its sources now feed
    history: History
    # The last state of each ended track, status ENDED: its slot is gone once the call returns.
    ended_tracks: GlobalTracks = GlobalTracks.empty()


class HistoryRecorder:
    """Collects one call's changes, then `finish` turns them into a FusionUpdate."""

    def __init__(self, node: str | None, frame: EnuFrame | None, global_tracks: GlobalTable,
                 describe: Callable[[np.ndarray], GlobalTracks] | None = None):  # fmt: skip
        """`describe(slots)` gives the final state of tracks about to end (ENDED)."""
        self._node = node
        self._frame = frame
        self._global_tracks = global_tracks
        self._describe = describe
        self._final: list[GlobalTracks] = []
        self._created: list[int] = []
        self._updated: list[np.ndarray] = []
        self._ended: list[int] = []
        self._merged: dict[int, int] = {}
        self._parts: list[tuple] = []

    def created(self, gid: int) -> None:
        self._created.append(gid)

    def updated(self, gids: np.ndarray) -> None:
        self._updated.append(np.asarray(gids, np.int64))

    def ended(self, slot: int, merged_into: int | None) -> None:
        """Global `slot` ends; called while its links still stand, for its class and sources."""
        gid = int(self._global_tracks.gid[slot])
        self._ended.append(gid)
        if merged_into is not None:
            self._merged[gid] = merged_into
        if self._describe is not None:
            self._final.append(self._describe(np.array([slot], np.int64)))

    def node_estimates(self, rows: NodeRows, slots: np.ndarray, late: bool) -> None:
        """Rows kept as the node said them, attributed to the global tracks at `slots` (or -1)."""
        gid = np.where(slots >= 0, self._global_tracks.gid[slots], -1)
        no = np.zeros(len(rows), bool)
        self._parts.append((rows.local_id, gid, rows.time, rows.x, rows.P, rows.up, no,
                            np.full(len(rows), late)))  # fmt: skip

    def batch_rows(self, rows: NodeRows, link: np.ndarray, links: LinkTable,
                   applied: np.ndarray) -> None:  # fmt: skip
        """Each associated row: its global track's state where it went into a published one."""
        global_tracks = self._global_tracks
        slots = links.global_slot[link]
        gid = global_tracks.gid[slots]
        fused = applied & (gid >= 0)
        pick = fused[:, None]
        self._parts.append((
            rows.local_id, gid, np.where(fused, global_tracks.t[slots], rows.time),
            np.where(pick, global_tracks.x[slots], rows.x),
            np.where(pick[:, :, None], global_tracks.P[slots], rows.P),
            np.where(fused, global_tracks.up[slots], rows.up), fused, np.zeros(len(rows), bool),
        ))  # fmt: skip

    def finish(self) -> FusionUpdate:
        created, ended = set(self._created), set(self._ended)
        updated = np.unique(np.concatenate(self._updated)) if self._updated else []
        return FusionUpdate(
            created=self._created,
            updated=[int(i) for i in updated if i not in created and i not in ended],
            ended=self._ended,
            merged=self._merged,
            history=self._history(),
            ended_tracks=GlobalTracks.concat(self._final),
        )

    def _history(self) -> History:
        if self._parts:
            columns = [np.concatenate(column) for column in zip(*self._parts, strict=True)]
        else:
            columns = [np.empty((0, *shape), dtype) for shape, dtype in (
                ((), np.int64), ((), np.int64), ((), float), ((4,), float), ((4, 4), float),
                ((), float), ((), bool), ((), bool))]  # fmt: skip
        local_id, gid, time, x, P, up, fused, late = columns
        lat = lon = np.empty(0)
        if len(local_id) and self._frame is not None:
            geodetic = enu_to_geodetic_batch(self._frame.origin,
                                             np.column_stack([x[:, 0], x[:, 1], up]))
            lat, lon = geodetic[:, 0], geodetic[:, 1]
        return History(self._node, local_id, gid, time, lat, lon, x, P, fused, late)
