"""Joint probabilistic data association (JPDA) over gated clusters.

In clutter a hard choice (GNN) sometimes feeds a track a false detection, and
the error lingers for several scans. JPDA instead weighs every feasible joint
event of a cluster — each track takes one of its gated measurements or none,
no measurement taken twice — by its likelihood, and updates each track with
the mixture of its per-measurement updates, moment-matched to one Gaussian.

Joint events are enumerated exactly, which is exponential in the cluster
size; clusters with more events than a bound are left to GNN (the caller
solves them with `linear_sum_assignment`), which the result flags.

Beside the marginals the enumeration keeps the most probable joint event: the
one hard answer to "which track used this measurement" that the rest of the
node (class votes, group counts, the clutter map, hit counts) shares. Unlike
each track's own most likely option it never gives one measurement to two
tracks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.tracking.assign import cluster_labels
from edge.tracking.gating import gate_pairs
from edge.tracking.kalman import updated_one
from edge.tracking.lifecycle import hit_log_likelihood_ratio

# Position of covariance entry (r, c) among the upper-triangle entries that
# `updated_one` returns after the state.
_UPPER = np.array([[0, 1, 2, 3], [1, 4, 5, 6], [2, 5, 7, 8], [3, 6, 8, 9]])


@njit(cache=True)
def marginal_probabilities(pair_track, pair_meas, pair_llr, miss_llr, labels, n_tracks, n_meas,
                           max_events):  # fmt: skip
    """Marginal association probabilities of each pair and each track's miss.

    pair_llr: ln(pd N(ν; 0, S) / λ) of each pair; miss_llr: ln(1 - pd).
    Returns (beta_pair, beta_miss, in_best_event, too_large): in_best_event[k]
    marks the pairs of each cluster's most probable joint event; too_large[k]
    marks the pairs of clusters with more than max_events joint events, whose
    betas and best event are unset.
    """
    n_pairs = pair_track.shape[0]
    beta_pair = np.zeros(n_pairs)
    beta_miss = np.ones(n_tracks)
    in_best_event = np.zeros(n_pairs, np.bool_)
    too_large = np.zeros(n_pairs, np.bool_)
    if n_pairs == 0:
        return beta_pair, beta_miss, in_best_event, too_large
    # Weights relative to a miss, so that the empty event weighs 1.
    weight = np.exp(pair_llr - miss_llr)

    order = np.argsort(labels, kind="mergesort")
    start = 0
    while start < n_pairs:
        stop = start
        while stop < n_pairs and labels[order[stop]] == labels[order[start]]:
            stop += 1
        cluster = order[start:stop]
        if _single_track(pair_track, cluster):
            _solve_single_track(pair_track, weight, cluster, beta_pair, beta_miss, in_best_event)
        elif _event_count(pair_track, cluster, max_events) > max_events:
            too_large[cluster] = True
        else:
            _enumerate_cluster(pair_track, pair_meas, weight, cluster, beta_pair, beta_miss,
                               in_best_event)  # fmt: skip
        start = stop
    return beta_pair, beta_miss, in_best_event, too_large


@njit(cache=True)
def _single_track(pair_track, cluster):
    first = pair_track[cluster[0]]
    for k in cluster:
        if pair_track[k] != first:
            return False
    return True


@njit(cache=True)
def _solve_single_track(pair_track, weight, cluster, beta_pair, beta_miss, in_best_event):
    """The common case, in closed form: PDA of one track (its measurements gate nobody else).

    Its best event is its likeliest option: a measurement that outweighs the miss (1).
    """
    total = 1.0
    best = -1
    best_weight = 1.0
    for k in cluster:
        total += weight[k]
        if weight[k] > best_weight:
            best_weight = weight[k]
            best = k
    for k in cluster:
        beta_pair[k] = weight[k] / total
    beta_miss[pair_track[cluster[0]]] = 1.0 / total
    if best >= 0:
        in_best_event[best] = True


@njit(cache=True)
def _event_count(pair_track, cluster, limit):
    """Upper bound of the joint events: product of (1 + gated pairs) per track."""
    tracks = np.unique(pair_track[cluster])
    count = 1
    for a in tracks:
        options = 1
        for k in cluster:
            if pair_track[k] == a:
                options += 1
        count *= options
        if count > limit:
            return count
    return count


@njit(cache=True)
def _enumerate_cluster(pair_track, pair_meas, weight, cluster, beta_pair, beta_miss,
                       in_best_event):  # fmt: skip
    """Exact marginals and the most probable event of one cluster, by depth-first
    enumeration of its events."""
    tracks = np.unique(pair_track[cluster])
    n = tracks.shape[0]
    # Pairs of each track, in a flat list with offsets.
    offsets = np.zeros(n + 1, np.int64)
    for t in range(n):
        offsets[t + 1] = offsets[t] + np.sum(pair_track[cluster] == tracks[t])
    pairs_of = np.empty(offsets[n], np.int64)
    fill = offsets[:n].copy()
    for k in cluster:
        t = np.searchsorted(tracks, pair_track[k])
        pairs_of[fill[t]] = k
        fill[t] += 1

    meas_used = np.zeros(np.max(pair_meas[cluster]) + 1, np.bool_)
    choice = np.full(n, -2, np.int64)  # -2 not yet chosen, -1 miss, else a pair
    event_weight = np.ones(n + 1)
    pair_sum = np.zeros(offsets[n])
    miss_sum = np.zeros(n)
    total = 0.0
    best_weight = -1.0
    best_choice = np.full(n, -1, np.int64)
    depth = 0
    while depth >= 0:
        if depth == n:
            w = event_weight[n]
            total += w
            if w > best_weight:
                best_weight = w
                best_choice[:] = choice
            for t in range(n):
                if choice[t] == -1:
                    miss_sum[t] += w
                else:
                    pair_sum[choice[t]] += w
            depth -= 1
            continue
        # Advance track `depth` to its next option: miss first, then each pair.
        current = choice[depth]
        if current >= 0:
            meas_used[pair_meas[pairs_of[current]]] = False
        if current == -2:
            nxt = -1
        elif current == -1:
            nxt = offsets[depth]
        else:
            nxt = current + 1
        while nxt >= 0 and nxt < offsets[depth + 1] and meas_used[pair_meas[pairs_of[nxt]]]:
            nxt += 1
        if nxt >= offsets[depth + 1]:
            choice[depth] = -2
            depth -= 1
            continue
        choice[depth] = nxt
        if nxt == -1:
            event_weight[depth + 1] = event_weight[depth]
        else:
            meas_used[pair_meas[pairs_of[nxt]]] = True
            event_weight[depth + 1] = event_weight[depth] * weight[pairs_of[nxt]]
        depth += 1

    for t in range(n):
        beta_miss[tracks[t]] = miss_sum[t] / total
        for s in range(offsets[t], offsets[t + 1]):
            beta_pair[pairs_of[s]] = pair_sum[s] / total
        if best_choice[t] >= 0:
            in_best_event[pairs_of[best_choice[t]]] = True


@njit(cache=True)
def mixture_update(x, P, tracks, pair_track, pair_meas, beta_pair, beta_miss, z, R,
                   measurements):  # fmt: skip
    """Update each of `tracks` with the moment-matched mixture of its events.

    x+ = β0 x + Σ βj xj;  P+ = β0 (P + x x') + Σ βj (Pj + xj xj') - x+ x+'
    where xj, Pj is the Joseph update with measurement j.
    """
    n_tracks = tracks.shape[0]
    mean = np.zeros((4, n_tracks))
    second = np.zeros((4, 4, n_tracks))
    for a in range(n_tracks):
        b0 = beta_miss[a]
        i = tracks[a]
        for r in range(4):
            mean[r, a] = b0 * x[r, i]
            for c in range(4):
                second[r, c, a] = b0 * (P[r, c, i] + x[r, i] * x[c, i])
    for k in range(pair_track.shape[0]):
        beta = beta_pair[k]
        if beta == 0.0:
            continue
        a = pair_track[k]
        u = updated_one(x, P, tracks[a], z, R, measurements[pair_meas[k]])
        for r in range(4):
            mean[r, a] += beta * u[r]
            for c in range(4):
                second[r, c, a] += beta * (u[4 + _UPPER[r, c]] + u[r] * u[c])
    for a in range(n_tracks):
        i = tracks[a]
        for r in range(4):
            x[r, i] = mean[r, a]
        for r in range(4):
            for c in range(4):
                P[r, c, i] = second[r, c, a] - mean[r, a] * mean[c, a]
        # Rounding in the subtraction can break exact symmetry.
        for r in range(4):
            for c in range(r + 1, 4):
                v = 0.5 * (P[r, c, i] + P[c, r, i])
                P[r, c, i] = v
                P[c, r, i] = v


@njit(cache=True)
def jpda_propose(x, P, floats, ints, tracks, z, R, measurements, t, gate_d2, limits,
                 log_pd_over_clutter, miss_llr, max_events):  # fmt: skip
    """Gate `tracks` against `measurements` (within their class limits) and compute the
    JPDA marginals.

    Returns (pair_track, pair_meas, pair_llr, beta_pair, beta_miss, in_best_event,
    too_large).
    """
    n_tracks, n_meas = tracks.shape[0], measurements.shape[0]
    pair_track, pair_meas, d2, log_det = gate_pairs(
        x, P, floats, ints, tracks, z, R, measurements, gate_d2, t, limits
    )
    pair_llr = hit_log_likelihood_ratio(d2, log_det, log_pd_over_clutter)
    labels = cluster_labels(pair_track, pair_meas, n_tracks, n_meas)
    beta_pair, beta_miss, in_best_event, too_large = marginal_probabilities(
        pair_track, pair_meas, pair_llr, miss_llr, labels, n_tracks, n_meas, max_events
    )
    return pair_track, pair_meas, pair_llr, beta_pair, beta_miss, in_best_event, too_large


@njit(cache=True)
def jpda_apply(x, P, tracks, z, R, measurements, pair_track, pair_meas, pair_llr, beta_pair,
               beta_miss, in_best_event, miss_llr, assigned, llr, free):  # fmt: skip
    """Mixture-update `tracks` and book the outcome.

    A track counts a hit when the most probable joint event gives it a
    detection, which is then the one it used; its score moves by ln of the
    likelihood ratio of "one of the gated detections, or a miss". A
    measurement stays free for tentative tracks while no track used it and it
    more likely belongs to none of `tracks`.
    """
    mixture_update(x, P, tracks, pair_track, pair_meas, beta_pair, beta_miss, z, R, measurements)
    n_tracks, n_meas = tracks.shape[0], measurements.shape[0]
    relative = np.zeros(n_tracks)
    claimed = np.zeros(n_meas)
    for k in range(pair_track.shape[0]):
        a = pair_track[k]
        b = pair_meas[k]
        relative[a] += np.exp(pair_llr[k] - miss_llr)
        claimed[b] += beta_pair[k]
        if in_best_event[k]:
            assigned[tracks[a]] = measurements[b]
            free[measurements[b]] = False  # used: it starts no track of its own
    for a in range(n_tracks):
        llr[tracks[a]] = miss_llr + np.log1p(relative[a])
    for b in range(n_meas):
        if claimed[b] >= 0.5:
            free[measurements[b]] = False
