"""Global nearest-neighbour association over independent clusters.

The gated pairs form a bipartite graph between tracks and measurements. Its
connected components (clusters) are independent assignment problems, so the
one large problem splits into many small ones: most clusters hold a single
track or a single measurement and are solved directly in a kernel; only the
ambiguous ones go to `scipy.optimize.linear_sum_assignment`.

Costs are negative log-likelihood ratios: a pair costs -ln(pd N(ν; 0, S) / λ)
and a track left without a measurement costs -ln(1 - pd). A measurement left
unassigned costs nothing here (it is clutter or a new target, which the
initiator decides).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.optimize import linear_sum_assignment

from edge.tracking.gating import gate_pairs
from edge.tracking.kalman import store_one, updated_one
from edge.tracking.lifecycle import hit_log_likelihood_ratio


@njit(cache=True)
def _find(parent, node):
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@njit(cache=True)
def cluster_labels(pair_track, pair_meas, n_tracks, n_meas):
    """Component of each pair, as the root node of a union-find forest.

    Nodes 0..n_tracks-1 are tracks, n_tracks.. are measurements.
    """
    parent = np.arange(n_tracks + n_meas)
    for k in range(pair_track.shape[0]):
        a = _find(parent, pair_track[k])
        b = _find(parent, n_tracks + pair_meas[k])
        if a != b:
            parent[b] = a
    labels = np.empty(pair_track.shape[0], np.int64)
    for k in range(pair_track.shape[0]):
        labels[k] = _find(parent, pair_track[k])
    return labels


@njit(cache=True)
def solve_simple_clusters(pair_track, pair_meas, pair_cost, miss_cost, labels, n_tracks, n_meas):
    """Solve clusters with one track or one measurement; return the rest.

    Returns (track_to_pair, ambiguous_pairs): track_to_pair[a] is the pair
    chosen for track a or -1; ambiguous_pairs lists the pair indices of the
    remaining clusters, sorted by cluster label.
    """
    n_nodes = n_tracks + n_meas
    tracks_in = np.zeros(n_nodes, np.int64)
    meas_in = np.zeros(n_nodes, np.int64)
    last_track = np.full(n_nodes, -1, np.int64)
    track_seen = np.zeros(n_tracks, np.bool_)
    meas_seen = np.zeros(n_meas, np.bool_)
    for k in range(pair_track.shape[0]):
        root = labels[k]
        if not track_seen[pair_track[k]]:
            track_seen[pair_track[k]] = True
            tracks_in[root] += 1
            last_track[root] = pair_track[k]
        if not meas_seen[pair_meas[k]]:
            meas_seen[pair_meas[k]] = True
            meas_in[root] += 1

    # Best pair per simple cluster: the lowest cost relative to the track's miss.
    best_pair = np.full(n_nodes, -1, np.int64)
    best_gain = np.zeros(n_nodes)
    n_ambiguous = 0
    for k in range(pair_track.shape[0]):
        root = labels[k]
        if tracks_in[root] > 1 and meas_in[root] > 1:
            n_ambiguous += 1
            continue
        gain = pair_cost[k] - miss_cost[pair_track[k]]
        if gain < best_gain[root]:
            best_gain[root] = gain
            best_pair[root] = k

    track_to_pair = np.full(n_tracks, -1, np.int64)
    for root in range(n_nodes):
        k = best_pair[root]
        if k >= 0:
            track_to_pair[pair_track[k]] = k

    ambiguous = np.empty(n_ambiguous, np.int64)
    m = 0
    for k in range(pair_track.shape[0]):
        root = labels[k]
        if tracks_in[root] > 1 and meas_in[root] > 1:
            ambiguous[m] = k
            m += 1
    order = np.argsort(labels[ambiguous], kind="mergesort")
    return track_to_pair, ambiguous[order]


def solve_cluster(pairs, tracks, meas, costs, miss_cost):
    """Optimal assignment of one cluster, misses allowed.

    pairs: the cluster's pair indices; tracks, meas: local track and
    measurement of each pair; costs: their costs; miss_cost: cost of each
    track staying unassigned, indexed by local track. Returns the chosen pairs.
    """
    track_ids, track_row = np.unique(tracks, return_inverse=True)
    meas_ids, meas_col = np.unique(meas, return_inverse=True)
    n_rows = track_ids.shape[0]
    n_cols = meas_ids.shape[0]
    # One private "miss" column per track, so that leaving a track unassigned
    # is an option the solver weighs like any other.
    cost = np.full((n_rows, n_cols + n_rows), np.inf)
    cost[track_row, meas_col] = costs
    pair_at = np.full((n_rows, n_cols), -1, np.int64)
    pair_at[track_row, meas_col] = pairs
    cost[np.arange(n_rows), n_cols + np.arange(n_rows)] = miss_cost[track_ids]
    rows, cols = linear_sum_assignment(cost)
    real = cols < n_cols
    return pair_at[rows[real], cols[real]]


def associate(pair_track, pair_meas, pair_cost, miss_cost, n_tracks, n_meas):
    """The pair chosen for each track (-1 for a miss)."""
    labels = cluster_labels(pair_track, pair_meas, n_tracks, n_meas)
    track_to_pair, ambiguous = solve_simple_clusters(
        pair_track, pair_meas, pair_cost, miss_cost, labels, n_tracks, n_meas
    )
    solve_ambiguous(pair_track, pair_meas, pair_cost, miss_cost, labels, ambiguous, track_to_pair)
    return track_to_pair


def solve_ambiguous(pair_track, pair_meas, pair_cost, miss_cost, labels, ambiguous,
                    track_to_pair):  # fmt: skip
    """Solve the clusters left by `solve_simple_clusters`, into track_to_pair."""
    if ambiguous.shape[0]:
        cluster_starts = np.flatnonzero(np.diff(labels[ambiguous], prepend=-1))
        for pairs in np.split(ambiguous, cluster_starts[1:]):
            chosen = solve_cluster(
                pairs, pair_track[pairs], pair_meas[pairs], pair_cost[pairs], miss_cost
            )
            track_to_pair[pair_track[chosen]] = chosen


@njit(cache=True)
def gnn_propose(x, P, floats, ints, tracks, z, R, measurements, t, gate_d2, limits,
                log_pd_over_clutter, miss_llr):  # fmt: skip
    """Gate `tracks` against `measurements` (within their class limits) and solve the
    unambiguous clusters.

    Returns (pair_track, pair_meas, pair_llr, labels, track_to_pair,
    ambiguous); the ambiguous clusters are left to `solve_ambiguous`.
    """
    n_tracks, n_meas = tracks.shape[0], measurements.shape[0]
    pair_track, pair_meas, d2, log_det = gate_pairs(
        x, P, floats, ints, tracks, z, R, measurements, gate_d2, t, limits
    )
    pair_llr = hit_log_likelihood_ratio(d2, log_det, log_pd_over_clutter)
    labels = cluster_labels(pair_track, pair_meas, n_tracks, n_meas)
    miss_cost = np.full(n_tracks, -miss_llr)
    track_to_pair, ambiguous = solve_simple_clusters(
        pair_track, pair_meas, -pair_llr, miss_cost, labels, n_tracks, n_meas
    )
    return pair_track, pair_meas, pair_llr, labels, track_to_pair, ambiguous


@njit(cache=True)
def gnn_apply(x, P, tracks, z, R, measurements, pair_track, pair_meas, pair_llr, track_to_pair,
              assigned, llr, free):  # fmt: skip
    """Update each track with its chosen measurement and book the outcome.

    assigned, llr: per track of the table; free: per measurement.
    """
    for a in range(tracks.shape[0]):
        k = track_to_pair[a]
        if k < 0:
            continue
        i = tracks[a]
        j = measurements[pair_meas[k]]
        store_one(x, P, i, updated_one(x, P, i, z, R, j))
        assigned[i] = j
        llr[i] = pair_llr[k]
        free[j] = False
