"""Track-to-track fusion: node tracks from many posts become one picture of global tracks.

`Fusion.ingest` takes one TrackBatch (all tracks of one node's tracker cycle):

1. Its tracks go into HQ's fixed ENU frame (`fusion_tables.read_rows`). A
   track older than its global track by more than `late_tolerance` only goes
   to history: a global state never moves back in time (source-time
   ordering). A slightly older one is predicted forward and fused.
2. Each track is compared with global tracks at the later of the two times:
   squared Mahalanobis distance on position, and on velocity where both know
   it, gated at a chi-square quantile (Numba, `fusion_kernels`).
3. `scipy.optimize.linear_sum_assignment` proposes, one to one, a global track
   for each track among those that no track of this batch is linked to, so
   one node never feeds two of its tracks into one global track.
4. The link rules (`fusion_links`) turn distances and proposals into
   decisions with hysteresis: keep a link while it gates, break it after
   repeated misses, merge or switch only after repeated proposals, start
   hidden while a merge is being confirmed.
5. Covariance intersection fuses each track into its global track (Numba).
   Errors of different posts are correlated in unknown ways (shared maps,
   clocks and weather, and a global track already holds earlier updates of
   the same node), so summing their information would be overconfident.

`tick(now)` marks a global track COASTING once no node has seen its object for
`coast_after` seconds (node tracks that are themselves coasting do not count)
and ends it after `end_after`. `snapshot()` lists the published global tracks;
a track's class is the vote of its sources weighted by their quality.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

from hq import fusion_kernels as kernels
from hq.fusion_history import FusionUpdate, History, HistoryRecorder
from hq.fusion_links import Association, LinkRules
from hq.fusion_snapshot import GlobalTrack, GlobalTracks, describe
from hq.fusion_tables import (
    COASTING,
    CONFIRMED,
    FREE,
    HIDDEN,
    WIRE_STATUSES,
    GlobalTable,
    LinkTable,
    NodeRows,
    frame_transform,
    read_rows,
)
from wire.geo import EnuFrame
from wire.messages import TrackBatch, TrackStatus

log = logging.getLogger(__name__)

__all__ = ["Fusion", "FusionConfig", "FusionCounters", "FusionUpdate", "GlobalTrack",
           "GlobalTracks", "History"]

_FRESH = WIRE_STATUSES.index(TrackStatus.CONFIRMED)  # coasting node tracks are not fresh
_TENTATIVE = WIRE_STATUSES.index(TrackStatus.TENTATIVE)
_ENDED = WIRE_STATUSES.index(TrackStatus.ENDED)
_INFEASIBLE = 1e12  # the cost of a pair outside the gate in the assignment matrix


@dataclass(frozen=True)
class FusionConfig:
    """Fusion parameters; times in seconds, distances as squared Mahalanobis distances."""

    origin: tuple[float, float, float] | None = None  # HQ's ENU frame; None: the first post's
    process_noise: float = 0.1  # q, m²/s³, to predict between the posts' update times
    gate_probability: float = 0.9999  # chi-square gate, 2 or 4 degrees of freedom
    informative_velocity_std: float = 5.0  # m/s; a velocity vaguer than this does not gate
    unknown_velocity_std: float = 50.0  # m/s; what a track without a usable velocity gets
    merge_updates: int = 3  # K: consecutive proposals before a track merges
    break_after_misses: int = 3  # N: consecutive gate failures before a link breaks
    switch_margin: float = 4.0  # a shared link switches only to a global this much closer
    switch_updates: int = 3  # M: ... for this many consecutive updates
    late_tolerance: float = 2.0  # older than its global track by more: history only
    coast_after: float = 5.0  # no node saw the object for this long: COASTING
    end_after: float = 30.0  # ... for this long: ended
    ci_criterion: Literal["determinant", "trace"] = "determinant"
    # Global ids continue after those HQ stored before a restart, so none is used twice.
    first_global_id: int = 1

    def __post_init__(self):
        checks = {
            "process_noise": self.process_noise > 0,
            "gate_probability": 0 < self.gate_probability < 1,
            "informative_velocity_std": self.informative_velocity_std > 0,
            "unknown_velocity_std": self.unknown_velocity_std > self.informative_velocity_std,
            "merge_updates": self.merge_updates >= 1,
            "break_after_misses": self.break_after_misses >= 1,
            "switch_margin": self.switch_margin >= 0,
            "switch_updates": self.switch_updates >= 1,
            "late_tolerance": self.late_tolerance >= 0,
            "coast_after": 0 < self.coast_after < self.end_after,
            "ci_criterion": self.ci_criterion in ("determinant", "trace"),
            "first_global_id": self.first_global_id >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"FusionConfig: out of range: {', '.join(bad)}")


@dataclass
class FusionCounters:
    """What fusion did and refused, for HQ's metrics."""

    batches: int = 0
    tracks: int = 0
    rejected: int = 0  # non-finite or not positive definite, or a repeated local id
    without_velocity: int = 0  # used for position only
    skipped: int = 0  # tentative or ended node tracks
    late: int = 0  # older than their global track: history only
    unattributed: int = 0  # too old to start a global track: history only
    created: int = 0
    merged: int = 0
    switched: int = 0
    links_broken: int = 0
    resets: int = 0  # a sole source stopped gating and its global track followed it
    ended: int = 0


class Fusion:
    """Global tracks fused from the TrackBatches of many nodes.

    >>> fusion = Fusion(FusionConfig(origin=(22.84, 14.13, 620.0)))
    >>> update = fusion.ingest(batch, received=time.time())   # created/updated/ended, history
    >>> fusion.tick(time.time())                              # coast and end stale tracks
    >>> tracks = fusion.snapshot()                            # list[GlobalTrack]
    """

    def __init__(self, config: FusionConfig | None = None):
        self.config = c = config or FusionConfig()
        self.counters = FusionCounters()
        self._frame = None if c.origin is None else EnuFrame(*c.origin)
        self._globals = GlobalTable()
        self._links = LinkTable()
        self._nodes: dict[str, int] = {}  # node key -> index
        self._transforms: dict[tuple[str, tuple], tuple[np.ndarray, np.ndarray]] = {}
        self._rules = LinkRules(c, self.counters, self._globals, self._links)
        self._gate2 = float(chi2.ppf(c.gate_probability, 2))
        self._gate4 = float(chi2.ppf(c.gate_probability, 4))
        self._informative_variance = c.informative_velocity_std**2
        self._use_trace = c.ci_criterion == "trace"
        kernels.warm()

    @property
    def frame(self) -> EnuFrame | None:
        """HQ's ENU frame, in which states are expressed (None before the first batch)."""
        return self._frame

    # --- ingest ---------------------------------------------------------------------------

    def ingest(self, batch: TrackBatch, received: float) -> FusionUpdate:
        """Fuse one node's batch; `received` is the UTC time HQ received it."""
        key = f"{batch.site}/{batch.node}"
        node = self._nodes.setdefault(key, len(self._nodes))
        if self._frame is None:
            self._frame = EnuFrame(*batch.frame_origin)
        rows, rejected, without_velocity = read_rows(
            batch.tracks, *self._transform(key, batch.frame_origin),
            self.config.unknown_velocity_std**2,
        )  # fmt: skip
        self._count_batch(key, len(batch.tracks), rejected, without_velocity)
        recorder = HistoryRecorder(key, self._frame, self._globals, self._describe_ended)

        rows = self._skip_tentative_and_ended(node, rows)
        link = self._links.lookup(node, rows.local_id)
        own = np.where(link >= 0, self._links.global_slot[link], -1)
        late = (own >= 0) & (rows.time < self._globals.t[own] - self.config.late_tolerance)
        too_old = (own < 0) & (rows.time < received - self.config.end_after)
        self.counters.late += int(late.sum())
        self.counters.unattributed += int(too_old.sum())
        recorder.node_estimates(rows.take(late | too_old), own[late | too_old], late=True)

        live = ~(late | too_old)
        self._associate(Association(node, rows.take(live), link[live], own[live]), recorder)
        return recorder.finish()

    def _transform(self, key: str, origin: tuple) -> tuple[np.ndarray, np.ndarray]:
        # Keyed by origin too: a node may move its frame between runs.
        if (key, origin) not in self._transforms:
            self._transforms[(key, origin)] = frame_transform(origin, self._frame)
        return self._transforms[(key, origin)]

    def _count_batch(self, key, n, rejected, without_velocity):
        counters = self.counters
        counters.batches += 1
        counters.tracks += n
        counters.rejected += rejected
        counters.without_velocity += without_velocity
        if rejected:
            log.warning("node tracks rejected node=%s rejected=%d of=%d", key, rejected, n)

    def _skip_tentative_and_ended(self, node: int, rows: NodeRows) -> NodeRows:
        """Ended node tracks drop their links; neither ended nor tentative ones are fused."""
        skipped = (rows.status == _TENTATIVE) | (rows.status == _ENDED)
        for local_id in rows.local_id[rows.status == _ENDED].tolist():
            link = self._links.index.get((node, local_id))
            if link is not None:
                self._rules.unlink(link)
        self.counters.skipped += int(skipped.sum())
        return rows.take(~skipped)

    # --- association ----------------------------------------------------------------------

    def _associate(self, b: Association, recorder: HistoryRecorder) -> None:
        self._distances_to_own(b)
        self._propose(b)
        links, g = self._links, self._globals
        # The common case, vectorised: a linked track that gates, with nothing pending.
        has = b.own >= 0
        quiet = has & b.gated & (b.proposal < 0)
        quiet[has] &= (links.streak[b.link[has]] == 0) & (g.status[b.own[has]] != HIDDEN)
        target = np.where(quiet, b.own, -1)
        for i in np.flatnonzero(~quiet).tolist():
            target[i] = self._rules.decide(b, i, recorder)

        fused = target >= 0
        slots = target[fused]
        r = b.rows
        kernels.fuse_rows(g.x, g.P, g.t, slots, r.x[fused], r.P[fused], r.time[fused],
                          self.config.process_noise, self._use_trace)  # fmt: skip
        g.up[slots] = r.up[fused]
        b.applied |= fused
        self._book_sources(b, recorder)
        recorder.batch_rows(b.rows, b.link, self._links, b.applied)

    def _distances_to_own(self, b: Association) -> None:
        has = np.flatnonzero(b.own >= 0)
        g, r = self._globals, b.rows
        d2, dof = kernels.pair_distances(r.x, r.P, r.time, has, g.x, g.P, g.t, b.own[has],
                                         self.config.process_noise, self._informative_variance)
        b.d2_own[has] = d2
        b.gated[has] = d2 <= np.where(dof == 4, self._gate4, self._gate2)
        misses = self._links.misses
        misses[b.link[has]] = np.where(b.gated[has], 0, misses[b.link[has]] + 1)

    def _propose(self, b: Association) -> None:
        """One-to-one proposals among the published global tracks this batch does not hold."""
        g, r = self._globals, b.rows
        free = np.zeros(g.used, bool)
        free[g.published()] = True
        free[b.own[b.own >= 0]] = False
        candidates = np.flatnonzero(free)
        pair_row, pair_candidate, pair_d2 = kernels.gated_pairs(
            r.x, r.P, r.time, g.x, g.P, g.t, candidates, self.config.process_noise,
            self._informative_variance, self._gate2, self._gate4,
        )  # fmt: skip
        if pair_row.size == 0:
            return
        rows, row_of = np.unique(pair_row, return_inverse=True)
        columns, column_of = np.unique(pair_candidate, return_inverse=True)
        if rows.size == pair_row.size and columns.size == pair_row.size:
            chosen_row, chosen_column, cost = pair_row, pair_candidate, pair_d2  # no conflict
        else:
            matrix = np.full((rows.size, columns.size), _INFEASIBLE)
            matrix[row_of, column_of] = pair_d2
            a, c = linear_sum_assignment(matrix)
            keep = matrix[a, c] < _INFEASIBLE
            chosen_row, chosen_column, cost = rows[a[keep]], columns[c[keep]], matrix[a, c][keep]
        b.proposal[chosen_row] = candidates[chosen_column]
        b.d2_proposal[chosen_row] = cost

    def _book_sources(self, b: Association, recorder: HistoryRecorder) -> None:
        """Record each row on its link; freshness and status of the global tracks it fed."""
        links, g, r = self._links, self._globals, b.rows
        links.t[b.link] = r.time
        links.target_class[b.link] = r.target_class
        links.quality[b.link] = r.quality
        fresh = b.applied & (r.status == _FRESH)
        slots = b.own[fresh]
        g.t_fresh[slots] = np.maximum(g.t_fresh[slots], r.time[fresh])
        g.status[slots[g.status[slots] == COASTING]] = CONFIRMED
        fed = b.own[b.applied]
        recorder.updated(g.gid[fed[g.gid[fed] >= 0]])

    def tick(self, now: float) -> FusionUpdate:
        """Coast global tracks no node has seen for coast_after s; end them after end_after."""
        c, g, links = self.config, self._globals, self._links
        recorder = HistoryRecorder(None, self._frame, g, self._describe_ended)
        age = now - g.t_fresh[: g.used]
        starts_coasting = np.flatnonzero((g.status[: g.used] == CONFIRMED) & (age > c.coast_after))
        g.status[starts_coasting] = COASTING
        recorder.updated(g.gid[starts_coasting])
        for slot in np.flatnonzero((g.status[: g.used] != FREE) & (age > c.end_after)).tolist():
            self._rules.end(slot, recorder)
        # Links of node tracks gone quiet; their global tracks live on through the others.
        for link in np.flatnonzero(links.t[: links.used] < now - c.end_after).tolist():
            if links.global_slot[link] >= 0:
                self._rules.unlink(link)
        return recorder.finish()

    # --- output ---------------------------------------------------------------------------

    def snapshot(self, ids=None) -> list[GlobalTrack]:
        """The published global tracks (those of `ids` only, when given), in order of id."""
        table = self.tracks(ids)
        return [table.track(k) for k in range(len(table))]

    def tracks(self, ids=None) -> GlobalTracks:
        """`snapshot` as one table of columns, without an object per track."""
        g = self._globals
        slots = g.published()
        if ids is not None:
            slots = slots[np.isin(g.gid[slots], np.fromiter(ids, np.int64))]
        slots = slots[np.argsort(g.gid[slots])]
        return self._describe(slots)

    def _describe(self, slots: np.ndarray, ended: bool = False) -> GlobalTracks:
        return describe(self._globals, self._links, slots, self._frame, list(self._nodes),
                        self.config.coast_after, ended)  # fmt: skip

    def _describe_ended(self, slots: np.ndarray) -> GlobalTracks:
        return self._describe(slots, ended=True)
