"""Steps 2 and 3 of fusion: how far each row of a batch is from the global tracks.

- Step 2 (`Associator.gate_linked`): each row with a link is compared with its
  linked global track at the later of the two times: squared Mahalanobis
  distance on position, and on velocity where both know it, gated at a
  chi-square quantile (hq/fusion/gating.py).
- Step 3 (`Associator.propose`): `scipy.optimize.linear_sum_assignment`
  proposes, one to one, a global track for each row among those that no row
  of this batch is linked to, so that one node never feeds two of its tracks
  into one global track.

What the link rules (step 4) then decide about each row is written into the
same `Association`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

from hq.fusion.config import FusionConfig
from hq.fusion.gating import gated_pairs, pair_distances
from hq.fusion.rows import NodeRows
from hq.fusion.tables import GlobalTable, LinkTable

_INFEASIBLE = 1e12  # the cost of a pair outside the gate in the assignment matrix


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


class Associator:
    """Distances and proposals of a batch's rows against the global tracks it is given."""

    def __init__(self, config: FusionConfig, global_tracks: GlobalTable, links: LinkTable):
        self._process_noise = config.process_noise
        self._gate2 = float(chi2.ppf(config.gate_probability, 2))
        self._gate4 = float(chi2.ppf(config.gate_probability, 4))
        self._informative_variance = config.informative_velocity_std**2
        self._global_tracks = global_tracks
        self._links = links

    def gate_linked(self, association: Association) -> None:
        """Step 2: distance of each linked row to its global track; gate misses counted."""
        linked = np.flatnonzero(association.own >= 0)
        rows, global_tracks = association.rows, self._global_tracks
        d2, dof = pair_distances(rows.x, rows.P, rows.time, linked, global_tracks.x,
                                 global_tracks.P, global_tracks.t, association.own[linked],
                                 self._process_noise, self._informative_variance)  # fmt: skip
        association.d2_own[linked] = d2
        association.gated[linked] = d2 <= np.where(dof == 4, self._gate4, self._gate2)
        misses, link = self._links.misses, association.link[linked]
        misses[link] = np.where(association.gated[linked], 0, misses[link] + 1)

    def propose(self, association: Association) -> None:
        """Step 3: one-to-one proposals among the published global tracks this batch does not
        hold."""
        rows, global_tracks = association.rows, self._global_tracks
        free = np.zeros(global_tracks.used, bool)
        free[global_tracks.published()] = True
        free[association.own[association.own >= 0]] = False
        candidates = np.flatnonzero(free)
        pair_row, pair_candidate, pair_d2 = gated_pairs(
            rows.x, rows.P, rows.time, global_tracks.x, global_tracks.P, global_tracks.t,
            candidates, self._process_noise, self._informative_variance, self._gate2,
            self._gate4,
        )  # fmt: skip
        if pair_row.size == 0:
            return
        row_ids, row_of = np.unique(pair_row, return_inverse=True)
        columns, column_of = np.unique(pair_candidate, return_inverse=True)
        if row_ids.size == pair_row.size and columns.size == pair_row.size:
            chosen_row, chosen_column, cost = pair_row, pair_candidate, pair_d2  # no conflict
        else:
            matrix = np.full((row_ids.size, columns.size), _INFEASIBLE)
            matrix[row_of, column_of] = pair_d2
            assigned_row, assigned_column = linear_sum_assignment(matrix)
            cost = matrix[assigned_row, assigned_column]
            keep = cost < _INFEASIBLE
            chosen_row, chosen_column = row_ids[assigned_row[keep]], columns[assigned_column[keep]]
            cost = cost[keep]
        association.proposal[chosen_row] = candidates[chosen_column]
        association.d2_proposal[chosen_row] = cost
