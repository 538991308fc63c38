"""`Fusion`: a TrackBatch's way through HQ fusion, one step after another.

`Fusion.ingest` takes one TrackBatch (all tracks of one node's tracker cycle)
through six steps, each in a module of its own:

1. `rows`: its tracks go into HQ's fixed ENU frame. Tentative and ended node
   tracks go no further (an ended one drops its link). A track older than its
   global track by more than `late_tolerance` only goes to history: a global
   state never moves back in time (source-time ordering). A slightly older
   one is predicted forward and fused.
2. `association`, `gating`: each track is compared with the global track it
   is linked to, at the later of the two times, and gated.
3. `association`: the assignment proposes, one to one, a global track for
   each track among those that no track of this batch is linked to.
4. `links`: the link rules turn distances and proposals into decisions with
   hysteresis (keep, break, merge, switch, start).
5. `intersection`: covariance intersection fuses each track into the global
   track decided for it; the links record what their node track said.
6. `history`: what changed, as a `FusionUpdate` with its `History` rows.

`tick(now)` marks a global track coasting once no node has seen its object for
`coast_after` seconds (node tracks that are themselves coasting do not count)
and ends it after `end_after`. `snapshot()` and `tracks()` list the published
global tracks (`snapshot`); a track's class is the vote of its sources weighted
by their quality.
"""

from __future__ import annotations

import logging

import numpy as np

from hq.fusion.association import Association, Associator
from hq.fusion.config import FusionConfig, FusionCounters
from hq.fusion.gating import gated_pairs, pair_distances
from hq.fusion.history import FusionUpdate, HistoryRecorder
from hq.fusion.intersection import covariance_intersection, fuse_rows
from hq.fusion.links import LinkRules
from hq.fusion.rows import NodeRows, frame_transform, node_states, position_spread, read_rows
from hq.fusion.snapshot import GlobalTrack, GlobalTracks, describe
from hq.fusion.tables import (
    GLOBAL_COASTING,
    GLOBAL_CONFIRMED,
    GLOBAL_FREE,
    GLOBAL_HIDDEN,
    WIRE_CONFIRMED,
    WIRE_ENDED,
    WIRE_TENTATIVE,
    GlobalTable,
    LinkTable,
)
from wire.geo import EnuFrame
from wire.messages import TrackBatch

log = logging.getLogger(__name__)


class Fusion:
    """Global tracks fused from the TrackBatches of many nodes.

    >>> fusion = Fusion(FusionConfig(origin=(22.84, 14.13, 620.0)))
    >>> update = fusion.ingest(batch, received=time.time())   # created/updated/ended, history
    >>> fusion.tick(time.time())                              # coast and end stale tracks
    >>> tracks = fusion.snapshot()                            # list[GlobalTrack]
    """

    def __init__(self, config: FusionConfig | None = None):
        self.config = config = config if config is not None else FusionConfig()
        self.counters = FusionCounters()
        self._frame = None if config.origin is None else EnuFrame(*config.origin)
        self._global_tracks = GlobalTable()
        self._links = LinkTable()
        self._nodes: dict[str, int] = {}  # node key -> index
        self._transforms: dict[tuple[str, tuple], tuple[np.ndarray, np.ndarray]] = {}
        self._associator = Associator(config, self._global_tracks, self._links)
        self._rules = LinkRules(config, self.counters, self._global_tracks, self._links)
        self._use_trace = config.ci_criterion == "trace"
        warm_kernels()

    @property
    def frame(self) -> EnuFrame | None:
        """HQ's ENU frame, in which states are expressed (None before the first batch)."""
        return self._frame

    # --- ingest: steps 1 to 6 -------------------------------------------------------------

    def ingest(self, batch: TrackBatch, received: float) -> FusionUpdate:
        """Fuse one node's batch; `received` is the UTC time HQ received it."""
        node_key = f"{batch.site}/{batch.node}"
        node = self._nodes.setdefault(node_key, len(self._nodes))
        if self._frame is None:
            self._frame = EnuFrame(*batch.frame_origin)
        recorder = HistoryRecorder(node_key, self._frame, self._global_tracks,
                                   self._describe_ended)  # fmt: skip
        rows = self._read(node_key, batch)  # 1
        rows = self._skip_tentative_and_ended(node, rows)
        association = self._set_aside_late(node, rows, received, recorder)
        self._associator.gate_linked(association)  # 2
        self._associator.propose(association)  # 3
        targets = self._decide(association, recorder)  # 4
        self._fuse(association, targets)  # 5
        self._record_sources(association, recorder)
        recorder.batch_rows(association.rows, association.link, self._links,
                            association.applied)  # fmt: skip
        return recorder.finish()  # 6

    def _read(self, node_key: str, batch: TrackBatch) -> NodeRows:
        """Step 1: the batch's usable tracks in HQ's frame, the rejected ones counted."""
        rows, rejected, without_velocity = read_rows(
            batch.tracks, *self._transform(node_key, batch.frame_origin),
            self.config.unknown_velocity_std**2, self.config.unstated_class_belief,
        )  # fmt: skip
        counters, n = self.counters, len(batch.tracks)
        counters.batches += 1
        counters.tracks += n
        counters.rejected += rejected
        counters.without_velocity += without_velocity
        if rejected:
            log.warning("node tracks rejected node=%s rejected=%d of=%d", node_key, rejected, n)
        return rows

    def _transform(self, node_key: str, origin: tuple) -> tuple[np.ndarray, np.ndarray]:
        # Keyed by origin too: a node may move its frame between runs.
        if (node_key, origin) not in self._transforms:
            self._transforms[(node_key, origin)] = frame_transform(origin, self._frame)
        return self._transforms[(node_key, origin)]

    def _skip_tentative_and_ended(self, node: int, rows: NodeRows) -> NodeRows:
        """Ended node tracks drop their links; neither ended nor tentative ones are fused."""
        skipped = (rows.status == WIRE_TENTATIVE) | (rows.status == WIRE_ENDED)
        for local_id in rows.local_id[rows.status == WIRE_ENDED].tolist():
            link = self._links.index.get((node, local_id))
            if link is not None:
                self._rules.unlink(link)
        self.counters.skipped += int(skipped.sum())
        return rows.take(~skipped)

    def _set_aside_late(self, node: int, rows: NodeRows, received: float,
                        recorder: HistoryRecorder) -> Association:  # fmt: skip
        """Rows too old for their global track, or to start one, go to history only; the
        others are to be associated."""
        link = self._links.lookup(node, rows.local_id)
        own = np.where(link >= 0, self._links.global_slot[link], -1)
        global_time = self._global_tracks.t[own]
        late = (own >= 0) & (rows.time < global_time - self.config.late_tolerance)
        too_old = (own < 0) & (rows.time < received - self.config.end_after)
        self.counters.late += int(late.sum())
        self.counters.unattributed += int(too_old.sum())
        kept = late | too_old
        recorder.node_estimates(rows.take(kept), own[kept], late=True)
        live = ~kept
        return Association(node, rows.take(live), link[live], own[live])

    def _decide(self, association: Association, recorder: HistoryRecorder) -> np.ndarray:
        """Step 4: the global slot each row goes into, -1 for none."""
        links, global_tracks = self._links, self._global_tracks
        own = association.own
        # The common case, vectorised: a linked track that gates, with nothing pending.
        linked = own >= 0
        quiet = linked & association.gated & (association.proposal < 0)
        quiet[linked] &= ((links.streak[association.link[linked]] == 0)
                          & (global_tracks.status[own[linked]] != GLOBAL_HIDDEN))  # fmt: skip
        targets = np.where(quiet, own, -1)
        for row in np.flatnonzero(~quiet).tolist():
            targets[row] = self._rules.decide(association, row, recorder)
        return targets

    def _fuse(self, association: Association, targets: np.ndarray) -> None:
        """Step 5: covariance intersection of each row with the global track decided for it."""
        global_tracks, rows = self._global_tracks, association.rows
        fused = targets >= 0
        slots = targets[fused]
        fuse_rows(global_tracks.x, global_tracks.P, global_tracks.t, slots, rows.x[fused],
                  rows.P[fused], rows.time[fused], self.config.process_noise,
                  self._use_trace)  # fmt: skip
        global_tracks.up[slots] = rows.up[fused]
        association.applied |= fused

    def _record_sources(self, association: Association, recorder: HistoryRecorder) -> None:
        """Each row recorded on its link; freshness and status of the global tracks it fed."""
        links, global_tracks, rows = self._links, self._global_tracks, association.rows
        links.t[association.link] = rows.time
        links.target_class[association.link] = rows.target_class
        links.quality[association.link] = rows.quality
        links.class_p[association.link] = rows.class_p
        links.count[association.link] = rows.count
        links.spread[association.link] = position_spread(rows.P)
        applied = association.own[association.applied]
        np.maximum.at(global_tracks.t_measured, applied, rows.measured[association.applied])
        fresh = association.applied & (rows.status == WIRE_CONFIRMED)
        slots = association.own[fresh]
        global_tracks.t_fresh[slots] = np.maximum(global_tracks.t_fresh[slots], rows.time[fresh])
        status = global_tracks.status
        status[slots[status[slots] == GLOBAL_COASTING]] = GLOBAL_CONFIRMED
        fed = association.own[association.applied]
        recorder.updated(global_tracks.gid[fed[global_tracks.gid[fed] >= 0]])

    # --- time passing ---------------------------------------------------------------------

    def tick(self, now: float) -> FusionUpdate:
        """Coast global tracks no node has seen for coast_after s; end them after end_after."""
        config, global_tracks, links = self.config, self._global_tracks, self._links
        recorder = HistoryRecorder(None, self._frame, global_tracks, self._describe_ended)
        used = global_tracks.used
        age = now - global_tracks.t_fresh[:used]
        status = global_tracks.status[:used]
        starts_coasting = np.flatnonzero((status == GLOBAL_CONFIRMED) & (age > config.coast_after))
        global_tracks.status[starts_coasting] = GLOBAL_COASTING
        recorder.updated(global_tracks.gid[starts_coasting])
        for slot in np.flatnonzero((status != GLOBAL_FREE) & (age > config.end_after)).tolist():
            self._rules.end(slot, recorder)
        # Links of node tracks gone quiet; their global tracks live on through the others.
        for link in np.flatnonzero(links.t[: links.used] < now - config.end_after).tolist():
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
        global_tracks = self._global_tracks
        slots = global_tracks.published()
        if ids is not None:
            slots = slots[np.isin(global_tracks.gid[slots], np.fromiter(ids, np.int64))]
        slots = slots[np.argsort(global_tracks.gid[slots])]
        return self._describe(slots)

    def _describe(self, slots: np.ndarray, ended: bool = False) -> GlobalTracks:
        return describe(self._global_tracks, self._links, slots, self._frame, list(self._nodes),
                        self.config.coast_after, ended)  # fmt: skip

    def _describe_ended(self, slots: np.ndarray) -> GlobalTracks:
        return self._describe(slots, ended=True)


def warm_kernels() -> None:
    """Compile (or load from the cache) every fusion kernel on a tiny problem."""
    x = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    P = np.tile(np.eye(4), (2, 1, 1))
    t = np.array([0.0, 1.0])
    slots = np.array([0, 1], np.int64)
    covariance_intersection(x, P, x, P, True)
    covariance_intersection(x, P, x, P, False)
    pair_distances(x, P, t, slots, x, P, t, slots, 0.1, 25.0)
    gated_pairs(x, P, t, x.copy(), P.copy(), t.copy(), slots, 0.1, 25.0, 18.0, 23.0)
    fuse_rows(x.copy(), P.copy(), t.copy(), slots, x, P, t, 0.1, False)
    node_states(np.zeros((1, 15)), np.eye(3), np.zeros(3), 2500.0)
