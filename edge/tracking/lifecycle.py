"""Track life cycle: birth, score, confirmation and deletion.

Each track carries a sequential log-likelihood ratio (target versus clutter),
the track score of Blackman's sequential probability ratio test. A hit adds
ln(pd N(ν; 0, S) / λ); a miss adds ln(1 - pd). A tentative track is confirmed
when its score passes a threshold and deleted when it falls below another; a
confirmed track is deleted when its score drops far below its best, when it
has coasted too long, or when its position uncertainty has grown too large.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.tracking.table import CONFIRMED, TENTATIVE, compact_columns

LOG_2PI = float(np.log(2.0 * np.pi))


@njit(cache=True)
def hit_log_likelihood_ratio(d2, log_det_s, log_pd_over_clutter):
    """ln(pd N(ν; 0, S) / λ) for a pair with Mahalanobis d² and ln det S."""
    return log_pd_over_clutter - 0.5 * d2 - LOG_2PI - 0.5 * log_det_s


@njit(cache=True)
def advance(status, hits, misses, score, score_max, t_update, sensor_mask, P,
            assigned, llr, t, sensor_bit, n, confirm_score, tentative_delete_score,
            confirmed_delete_drop, max_coast_time, max_position_variance):  # fmt: skip
    """Book one scan into tracks 0..n-1; return the keep flag of each."""
    keep = np.ones(n, np.bool_)
    for i in range(n):
        score[i] += llr[i]
        if assigned[i] >= 0:
            hits[i] += 1
            t_update[i] = t
            sensor_mask[i] |= sensor_bit
        else:
            misses[i] += 1
        if status[i] == TENTATIVE:
            if score[i] >= confirm_score:
                status[i] = CONFIRMED
                score_max[i] = score[i]
            elif score[i] < tentative_delete_score:
                keep[i] = False
        else:
            score_max[i] = max(score_max[i], score[i])
            if score[i] < score_max[i] - confirmed_delete_drop:
                keep[i] = False
        if t - t_update[i] > max_coast_time:
            keep[i] = False
        if max(P[0, 0, i], P[1, 1, i]) > max_position_variance:
            keep[i] = False
    return keep


@njit(cache=True)
def give_birth(x, P, ids, status, t_state, t_born, t_update, hits, misses, score, score_max,
               sensor_mask, z, R, measurements, t, velocity_variance, birth_score,
               first_id, sensor_bit, n):  # fmt: skip
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
        P[2, 2, i] = velocity_variance
        P[3, 3, i] = velocity_variance
        ids[i] = first_id + k
        status[i] = TENTATIVE
        t_state[i] = t
        t_born[i] = t
        t_update[i] = t
        hits[i] = 1
        misses[i] = 0
        score[i] = birth_score
        score_max[i] = birth_score
        sensor_mask[i] = sensor_bit


@njit(cache=True)
def close_scan(x, P, ids, status, t_state, t_born, t_update, hits, misses, score, score_max,
               sensor_mask, n, assigned, llr, newborn, z, R, t, sensor_bit, next_id,
               confirm_score, tentative_delete_score, confirmed_delete_drop, max_coast_time,
               max_position_variance, velocity_variance, birth_score):  # fmt: skip
    """Book the scan, drop the dead, start the newborn (capacity reserved by the caller).

    Returns (tracks now, confirmed this scan, deleted this scan).
    """
    was_confirmed = 0
    for i in range(n):
        was_confirmed += status[i] == CONFIRMED
    keep = advance(status, hits, misses, score, score_max, t_update, sensor_mask, P, assigned,
                   llr, t, sensor_bit, n, confirm_score, tentative_delete_score,
                   confirmed_delete_drop, max_coast_time, max_position_variance)  # fmt: skip
    now_confirmed = 0
    for i in range(n):
        now_confirmed += status[i] == CONFIRMED and keep[i]
    deleted = n - np.count_nonzero(keep)
    confirmed_deleted = 0
    for i in range(n):
        confirmed_deleted += status[i] == CONFIRMED and not keep[i]
    n = compact_columns(keep, x, P, ids, status, t_state, t_born, t_update, hits, misses, score,
                        score_max, sensor_mask, n)  # fmt: skip
    give_birth(x, P, ids, status, t_state, t_born, t_update, hits, misses, score, score_max,
               sensor_mask, z, R, newborn, t, velocity_variance, birth_score, next_id,
               sensor_bit, n)  # fmt: skip
    newly_confirmed = now_confirmed + confirmed_deleted - was_confirmed
    return n + newborn.shape[0], newly_confirmed, deleted
