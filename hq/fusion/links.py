"""Step 4 of fusion, the link rules: which global track each node track feeds, and when that
changes.

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
  once if nothing is proposed for it, GLOBAL_HIDDEN otherwise (a likely second view of
  an object already shown, so that no second id flashes up while the merge is
  confirmed). A hidden track is published as soon as its proposal changes or
  goes away.
"""

from __future__ import annotations

from hq.fusion.association import Association
from hq.fusion.config import FusionConfig, FusionCounters
from hq.fusion.history import HistoryRecorder
from hq.fusion.tables import GLOBAL_CONFIRMED, GLOBAL_HIDDEN, GlobalTable, LinkTable


class LinkRules:
    """Applies the rules to the tables of global tracks and links it is given."""

    def __init__(self, config: FusionConfig, counters: FusionCounters,
                 global_tracks: GlobalTable, links: LinkTable):  # fmt: skip
        self.config = config
        self.counters = counters
        self._global_tracks = global_tracks
        self._links = links
        self._next_id = config.first_global_id

    def decide(self, association: Association, row: int, recorder: HistoryRecorder) -> int:
        """Apply the rules to one row; the global slot to fuse it into, or -1."""
        if association.own[row] < 0:
            return self.start(association, row, recorder)
        config, links = self.config, self._links
        link, own = association.link[row], association.own[row]
        proposal = association.proposal[row]
        sole = self._sole_source(own, link, association.rows.time[row])
        if sole:
            streak = self._streak(link, proposal)
            if streak >= config.merge_updates:
                self.counters.merged += 1
                return self._move(association, row, proposal, recorder, end_old=True)
            if self._global_tracks.status[own] == GLOBAL_HIDDEN and streak <= 1:
                self.publish(own, recorder)  # its proposal changed or went away
        else:
            closer = association.d2_proposal[row] + config.switch_margin < association.d2_own[row]
            better = proposal >= 0 and closer
            if self._streak(link, proposal if better else -1) >= config.switch_updates:
                self.counters.switched += 1
                return self._move(association, row, proposal, recorder, end_old=False)
        if association.gated[row]:
            return own
        if links.misses[link] < config.break_after_misses:
            return -1  # an outlier, or the start of a real divergence: wait and see
        if sole:
            self._reset(association, row)
            return -1
        self.counters.links_broken += 1
        self.unlink(link)
        association.link[row] = association.own[row] = -1
        return self.start(association, row, recorder)

    def start(self, association: Association, row: int, recorder: HistoryRecorder) -> int:
        """A track without a link: link it to a new global track, or straight to its proposal."""
        proposal, rows = association.proposal[row], association.rows
        if proposal >= 0 and self.config.merge_updates <= 1:
            association.link[row] = self._link(association.node, int(rows.local_id[row]), proposal)
            association.own[row] = proposal
            return proposal
        status = GLOBAL_HIDDEN if proposal >= 0 else GLOBAL_CONFIRMED
        slot = self._global_tracks.add(rows.x[row], rows.P[row], rows.time[row], rows.up[row],
                                       status)  # fmt: skip
        association.link[row] = self._link(association.node, int(rows.local_id[row]), slot)
        association.own[row] = slot
        association.applied[row] = True
        if proposal >= 0:
            self._streak(association.link[row], proposal)
        else:
            self.publish(slot, recorder)
        return -1

    def _sole_source(self, slot: int, link: int, time: float) -> bool:
        """No other link of the global track had an update within coast_after of `time`."""
        links = self._links
        oldest = time - self.config.coast_after
        return not any(links.t[other] >= oldest
                       for other in self._global_tracks.links[slot] if other != link)  # fmt: skip

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

    def _move(self, association: Association, row: int, slot: int, recorder: HistoryRecorder,
              end_old: bool) -> int:  # fmt: skip
        """Point the row's link at global `slot`; end the old global track if asked."""
        link, old = association.link[row], association.own[row]
        if end_old:
            # Ended before the link moves, so its final state still counts this source.
            self.end(old, recorder, merged_into=slot, keep=link)
        else:
            self._global_tracks.links[old].discard(link)
        self._global_tracks.links[slot].add(link)
        self._links.global_slot[link], self._links.misses[link] = slot, 0
        self._streak(link, -1)
        association.own[row] = slot
        return slot

    def _reset(self, association: Association, row: int) -> None:
        """The global track takes its sole source's state.

        Stamped with the later of the two times, so that the track's time never
        goes back; the row is at most `late_tolerance` older.
        """
        global_tracks, rows, slot = self._global_tracks, association.rows, association.own[row]
        global_tracks.x[slot], global_tracks.P[slot] = rows.x[row], rows.P[row]
        global_tracks.up[slot] = rows.up[row]
        global_tracks.t[slot] = max(global_tracks.t[slot], rows.time[row])
        self._links.misses[association.link[row]] = 0
        association.applied[row] = True
        self.counters.resets += 1

    def _link(self, node: int, local_id: int, slot: int) -> int:
        link = self._links.add(node, local_id, slot)
        self._global_tracks.links[slot].add(link)
        return link

    def unlink(self, link: int) -> None:
        slot = int(self._links.global_slot[link])
        self._global_tracks.links.get(slot, set()).discard(link)
        self._links.release(link)

    def publish(self, slot: int, recorder: HistoryRecorder) -> None:
        global_tracks = self._global_tracks
        global_tracks.gid[slot], global_tracks.status[slot] = self._next_id, GLOBAL_CONFIRMED
        self._next_id += 1
        self.counters.created += 1
        recorder.created(int(global_tracks.gid[slot]))

    def end(self, slot: int, recorder: HistoryRecorder, merged_into: int = -1,
            keep: int = -1) -> None:  # fmt: skip
        """Free a global track and its links (but link `keep`, which moves on); reported as
        ended, with its final state, if it was published."""
        global_tracks = self._global_tracks
        if global_tracks.gid[slot] >= 0:
            self.counters.ended += 1
            recorder.ended(slot, int(global_tracks.gid[merged_into]) if merged_into >= 0 else None)
        for link in global_tracks.links[slot] - {keep}:
            self._links.release(link)
        global_tracks.release(slot)
