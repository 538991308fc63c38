"""The link rules of HQ fusion: which global track each node track feeds, and when that changes.

A link (node, node-local track id) -> global track is remembered between
batches. The rules below decide, for one node track of a batch, whether its
update goes into the linked global track, and when a link starts, moves or
ends. They exist so that global ids do not flicker: every change of mind needs
several consecutive updates behind it.

- Keep: a link stays while the track gates with its global track. A gate
  failure is first taken for an outlier: nothing is fused, the link is kept.
- Break: after `break_after_misses` consecutive failures the link breaks and
  the track starts afresh, unless it is the global track's sole current
  source; then the global track is reset to it, since nothing else speaks for
  the old state.
- Merge: a sole source whose proposal (the one-to-one assignment's choice
  among the other global tracks) is the same for `merge_updates` consecutive
  updates moves there, and its old global track ends ("merged"). Covers two
  posts' tracks of one object, and a node track restarted under a new id.
- Switch: a source that shares its global track with others moves only when
  its proposal is closer by `switch_margin` for `switch_updates` updates.
- Start: a track without a link gets a global track of its own, published at
  once if nothing is proposed for it, HIDDEN otherwise (a likely second view of
  an object already shown, so that no second id flashes up while the merge is
  confirmed). A hidden track is published as soon as its proposal changes or
  goes away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hq.fusion_history import HistoryRecorder
from hq.fusion_tables import CONFIRMED, HIDDEN, GlobalTable, LinkTable, NodeRows

if TYPE_CHECKING:
    from hq.fusion import FusionConfig, FusionCounters


@dataclass
class Association:
    """The rows of one batch being associated, and what is decided about each."""

    node: int
    rows: NodeRows
    link: np.ndarray  # link slot of each row, -1 for none yet
    own: np.ndarray  # global slot the link points at, -1 for none
    d2_own: np.ndarray = field(init=False)  # squared distance to it, inf if none
    gated: np.ndarray = field(init=False)  # ... inside the gate
    proposal: np.ndarray = field(init=False)  # slot proposed by the assignment, -1 for none
    d2_proposal: np.ndarray = field(init=False)
    applied: np.ndarray = field(init=False)  # the row's state went into its global track

    def __post_init__(self):
        n = len(self.rows)
        self.d2_own = np.full(n, np.inf)
        self.gated = np.zeros(n, bool)
        self.proposal = np.full(n, -1, np.int64)
        self.d2_proposal = np.full(n, np.inf)
        self.applied = np.zeros(n, bool)


class LinkRules:
    """Applies the rules to the tables of global tracks and links it is given."""

    def __init__(self, config: FusionConfig, counters: FusionCounters, globals_: GlobalTable,
                 links: LinkTable):  # fmt: skip
        self.config = config
        self.counters = counters
        self._globals = globals_
        self._links = links
        self._next_id = config.first_global_id

    def decide(self, a: Association, i: int, recorder: HistoryRecorder) -> int:
        """Apply the rules to row i; the global slot to fuse it into, or -1."""
        if a.own[i] < 0:
            return self.start(a, i, recorder)
        c, links = self.config, self._links
        link, own, proposal = a.link[i], a.own[i], a.proposal[i]
        sole = self._sole_source(own, link, a.rows.time[i])
        if sole:
            streak = self._streak(link, proposal)
            if streak >= c.merge_updates:
                self.counters.merged += 1
                return self._move(a, i, proposal, recorder, end_old=True)
            if self._globals.status[own] == HIDDEN and streak <= 1:
                self.publish(own, recorder)  # its proposal changed or went away
        else:
            better = proposal >= 0 and a.d2_proposal[i] + c.switch_margin < a.d2_own[i]
            if self._streak(link, proposal if better else -1) >= c.switch_updates:
                self.counters.switched += 1
                return self._move(a, i, proposal, recorder, end_old=False)
        if a.gated[i]:
            return own
        if links.misses[link] < c.break_after_misses:
            return -1  # an outlier, or the start of a real divergence: wait and see
        if sole:
            self._reset(a, i)
            return -1
        self.counters.links_broken += 1
        self.unlink(link)
        a.link[i] = a.own[i] = -1
        return self.start(a, i, recorder)

    def start(self, a: Association, i: int, recorder: HistoryRecorder) -> int:
        """A track without a link: link it to a new global track, or straight to its proposal."""
        proposal, rows = a.proposal[i], a.rows
        if proposal >= 0 and self.config.merge_updates <= 1:
            a.link[i] = self._link(a.node, int(rows.local_id[i]), proposal)
            a.own[i] = proposal
            return proposal
        slot = self._globals.add(rows, i, HIDDEN if proposal >= 0 else CONFIRMED)
        a.link[i] = self._link(a.node, int(rows.local_id[i]), slot)
        a.own[i] = slot
        a.applied[i] = True
        if proposal >= 0:
            self._streak(a.link[i], proposal)
        else:
            self.publish(slot, recorder)
        return -1

    def _sole_source(self, slot: int, link: int, time: float) -> bool:
        """No other link of the global track had an update within coast_after of `time`."""
        links = self._links
        oldest = time - self.config.coast_after
        return not any(links.t[other] >= oldest
                       for other in self._globals.links[slot] if other != link)  # fmt: skip

    def _streak(self, link: int, proposal: int) -> int:
        """Count consecutive updates with the same proposal (-1 resets the count)."""
        links = self._links
        if proposal < 0:
            links.candidate[link], links.streak[link] = -1, 0
        elif links.candidate[link] == proposal:
            links.streak[link] += 1
        else:
            links.candidate[link], links.streak[link] = proposal, 1
        return int(links.streak[link])

    def _move(self, a: Association, i: int, slot: int, recorder, end_old: bool) -> int:
        """Point row i's link at global `slot`; end the old global track if asked."""
        link, old = a.link[i], a.own[i]
        if end_old:
            # Ended before the link moves, so its final state still counts this source.
            self.end(old, recorder, merged_into=slot, keep=link)
        else:
            self._globals.links[old].discard(link)
        self._globals.links[slot].add(link)
        self._links.global_slot[link], self._links.misses[link] = slot, 0
        self._streak(link, -1)
        a.own[i] = slot
        return slot

    def _reset(self, a: Association, i: int) -> None:
        """The global track takes its sole source's state.

        Stamped with the later of the two times, so that the track's time never
        goes back; the row is at most `late_tolerance` older.
        """
        g, rows, slot = self._globals, a.rows, a.own[i]
        g.x[slot], g.P[slot], g.up[slot] = rows.x[i], rows.P[i], rows.up[i]
        g.t[slot] = max(g.t[slot], rows.time[i])
        self._links.misses[a.link[i]] = 0
        a.applied[i] = True
        self.counters.resets += 1

    def _link(self, node: int, local_id: int, slot: int) -> int:
        link = self._links.add(node, local_id, slot)
        self._globals.links[slot].add(link)
        return link

    def unlink(self, link: int) -> None:
        slot = int(self._links.global_slot[link])
        self._globals.links.get(slot, set()).discard(link)
        self._links.release(link)

    def publish(self, slot: int, recorder: HistoryRecorder) -> None:
        g = self._globals
        g.gid[slot], g.status[slot] = self._next_id, CONFIRMED
        self._next_id += 1
        self.counters.created += 1
        recorder.created(int(g.gid[slot]))

    def end(self, slot: int, recorder: HistoryRecorder, merged_into: int = -1,
            keep: int = -1) -> None:  # fmt: skip
        """Free a global track and its links (but link `keep`, which moves on); reported as
        ended, with its final state, if it was published."""
        g = self._globals
        if g.gid[slot] >= 0:
            self.counters.ended += 1
            recorder.ended(slot, int(g.gid[merged_into]) if merged_into >= 0 else None)
        for link in g.links[slot] - {keep}:
            self._links.release(link)
        g.release(slot)
