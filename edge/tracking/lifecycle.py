"""Track life cycle: birth, score, confirmation and deletion.

Each track carries a sequential log-likelihood ratio (target versus clutter),
the track score of Blackman's sequential probability ratio test. A hit adds
ln(pd N(ν; 0, S) / λ); a miss adds ln(1 - pd). A tentative track is confirmed
when its score passes a threshold and deleted when it falls below another; a
confirmed track is deleted when its score drops far below its best, when it
has coasted too long, or when its position uncertainty has grown too large.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edge.tracking import clutter
from edge.tracking.bounds import MAX_COAST, UNKNOWN, clip_speed
from edge.tracking.table import (
    CLASS,
    CONFIRMED,
    E_MEAS,
    HITS,
    ID,
    MISSES,
    N_MEAS,
    SCORE,
    SCORE_MAX,
    SENSOR_MASK,
    STATUS,
    T_BORN,
    T_STATE,
    T_UPDATE,
    TENTATIVE,
    VAR_MEAS,
    compact_columns,
)

LOG_2PI = float(np.log(2.0 * np.pi))


class LifeRules(NamedTuple):
    """What the life-cycle kernels need of the tracker's config, in the units they use."""

    confirm_score: float
    tentative_delete_score: float
    confirmed_delete_drop: float
    max_coast_time_s: float
    max_position_variance: float  # m²
    velocity_variance: float  # (m/s)², a newborn track's per axis
    birth_score: float  # a newborn track's score


@njit(cache=True)
def hit_log_likelihood_ratio(d2, log_det_s, log_pd_over_clutter):
    """ln(pd N(ν; 0, S) / λ) for a pair with Mahalanobis d² and ln det S."""
    return log_pd_over_clutter - 0.5 * d2 - LOG_2PI - 0.5 * log_det_s


@njit(cache=True)
def _mark_measured(x, P, floats, i):
    """Remember where track i is right after a measurement, and how surely."""
    floats[E_MEAS, i] = x[0, i]
    floats[N_MEAS, i] = x[1, i]
    floats[VAR_MEAS, i] = max(P[0, 0, i], P[1, 1, i])


@njit(cache=True)
def advance(x, P, floats, ints, assigned, llr, t, sensor_bit, n, rules, limits, ground_slots,
            ground_epoch, ground_rules):  # fmt: skip
    """Book one scan into tracks 0..n-1; return the keep flag of each.

    limits: `bounds`' table. A tentative track whose score would confirm it
    needs, beyond its first, the hits that the clutter map (`ground_*`: its
    arrays) asks for where it is.
    """
    keep = np.ones(n, np.bool_)
    for i in range(n):
        floats[SCORE, i] += llr[i]
        if assigned[i] >= 0:
            ints[HITS, i] += 1
            floats[T_UPDATE, i] = t
            ints[SENSOR_MASK, i] |= sensor_bit
            _mark_measured(x, P, floats, i)
        else:
            ints[MISSES, i] += 1
        score = floats[SCORE, i]
        if ints[STATUS, i] == TENTATIVE:
            if score >= rules.confirm_score and ints[HITS, i] >= 1 + clutter.extra_hits(
                ground_slots, ground_epoch, x[0, i], x[1, i], t, ground_rules
            ):
                ints[STATUS, i] = CONFIRMED
                floats[SCORE_MAX, i] = score
            elif score < rules.tentative_delete_score:
                keep[i] = False
        else:
            floats[SCORE_MAX, i] = max(floats[SCORE_MAX, i], score)
            if score < floats[SCORE_MAX, i] - rules.confirmed_delete_drop:
                keep[i] = False
        coast_limit = min(rules.max_coast_time_s, limits[ints[CLASS, i], MAX_COAST])
        if t - floats[T_UPDATE, i] > coast_limit:
            keep[i] = False
        if max(P[0, 0, i], P[1, 1, i]) > rules.max_position_variance:
            keep[i] = False
    return keep


@njit(cache=True)
def give_birth(x, P, floats, ints, z, R, measurements, t, sensor_bit, first_id, n, rules):
    """Start a tentative track at each measurement, placed after track n-1.

    The velocity is unknown, so it starts at zero with the prior variance of
    target speeds; the position and its covariance are the measurement's.
    """
    for k in range(measurements.shape[0]):
        i = n + k
        j = measurements[k]
        x[0, i] = z[j, 0]
        x[1, i] = z[j, 1]
        x[2, i] = 0.0
        x[3, i] = 0.0
        for a in range(4):
            for b in range(4):
                P[a, b, i] = 0.0
        P[0, 0, i] = R[j, 0, 0]
        P[0, 1, i] = 0.5 * (R[j, 0, 1] + R[j, 1, 0])
        P[1, 0, i] = P[0, 1, i]
        P[1, 1, i] = R[j, 1, 1]
        P[2, 2, i] = rules.velocity_variance
        P[3, 3, i] = rules.velocity_variance
        floats[T_STATE, i] = t
        floats[T_BORN, i] = t
        floats[T_UPDATE, i] = t
        floats[SCORE, i] = rules.birth_score
        floats[SCORE_MAX, i] = rules.birth_score
        ints[ID, i] = first_id + k
        ints[STATUS, i] = TENTATIVE
        ints[HITS, i] = 1
        ints[MISSES, i] = 0
        ints[SENSOR_MASK, i] = sensor_bit
        ints[CLASS, i] = UNKNOWN
        _mark_measured(x, P, floats, i)


@njit(cache=True)
def measurement_owners(ints, assigned, n, newborn, first_id, n_meas):
    """The id of the track that used each measurement (-1: none), before the scan closes:
    rows 0..n-1 by `assigned`, the newborn by the ids they are about to get."""
    owner = np.full(n_meas, -1, np.int64)
    for i in range(n):
        if assigned[i] >= 0:
            owner[assigned[i]] = ints[ID, i]
    for k in range(newborn.shape[0]):
        owner[newborn[k]] = first_id + k
    return owner


@njit(cache=True)
def close_scan(x, P, floats, ints, n, assigned, llr, usable, newborn, z, R, t, sensor_bit,
               next_id, rules, limits, ground_slots, ground_epoch, ground_rules):  # fmt: skip
    """Book the scan into the tracks and the clutter map (`ground_*`: its arrays), drop
    the dead, start the newborn (capacity reserved by the caller). limits: `bounds`'
    table.

    Returns (tracks now, confirmed this scan, deleted this scan, the id of the track
    that used each measurement).
    """
    owners = measurement_owners(ints, assigned, n, newborn, next_id, z.shape[0])
    clutter.record(ground_slots, ground_epoch, x, ints, n, z, usable, assigned, t, ground_rules)
    was_confirmed = 0
    for i in range(n):
        was_confirmed += ints[STATUS, i] == CONFIRMED
    clip_speed(x, ints, n, limits)
    keep = advance(x, P, floats, ints, assigned, llr, t, sensor_bit, n, rules, limits,
                   ground_slots, ground_epoch, ground_rules)  # fmt: skip
    now_confirmed = 0
    confirmed_deleted = 0
    for i in range(n):
        confirmed = ints[STATUS, i] == CONFIRMED
        now_confirmed += confirmed and keep[i]
        confirmed_deleted += confirmed and not keep[i]
    deleted = n - np.count_nonzero(keep)
    n = compact_columns(keep, x, P, floats, ints, n)
    give_birth(x, P, floats, ints, z, R, newborn, t, sensor_bit, next_id, n, rules)
    newly_confirmed = now_confirmed + confirmed_deleted - was_confirmed
    return n + newborn.shape[0], newly_confirmed, deleted, owners
