"""GOSPA: the generalised optimal sub-pattern assignment metric (alpha = 2).

Between a set of true positions and a set of estimates, GOSPA charges each
assigned pair its distance (cut off at c), and c^p / 2 for every missed truth
and every false estimate. With alpha = 2 it splits into the localisation,
missed and false parts that trackers are judged by.

The parts are reported in the p-th power domain, so that for p = 1 the total
is simply their sum; `total` is the metric itself, (sum of parts)^(1/p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Gospa:
    total: float
    localisation: float
    missed: float
    false: float


def gospa(truth, estimates, c: float, p: float = 1.0, alpha: float = 2.0) -> Gospa:
    """GOSPA between truth (n, 2) and estimates (m, 2) positions."""
    if alpha != 2.0:
        raise ValueError("GOSPA: only alpha = 2 splits into localisation, missed and false")
    if not c > 0:
        raise ValueError(f"GOSPA: the cut-off c must be positive, got {c}")
    if not p >= 1:
        raise ValueError(f"GOSPA: p must be at least 1, got {p}")
    truth = _points(truth, "truth")
    estimates = _points(estimates, "estimates")
    penalty = c**p / 2.0

    localisation = 0.0
    assigned = 0
    if len(truth) and len(estimates):
        distance = np.linalg.norm(truth[:, None, :] - estimates[None, :, :], axis=2)
        # A pair at or beyond the cut-off costs c^p either way (assigned at c,
        # or one miss plus one false at c^p / 2 each), so the optimum of the
        # clipped problem is the optimum of GOSPA.
        cost = np.minimum(distance, c) ** p
        rows, cols = linear_sum_assignment(cost)
        close = distance[rows, cols] < c
        localisation = float(np.sum(cost[rows, cols][close]))
        assigned = int(np.count_nonzero(close))
    missed = penalty * (len(truth) - assigned)
    false = penalty * (len(estimates) - assigned)
    return Gospa(
        total=(localisation + missed + false) ** (1.0 / p),
        localisation=localisation,
        missed=missed,
        false=false,
    )


def _points(values, name: str) -> np.ndarray:
    points = np.asarray(values, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"GOSPA: {name} must have shape (n, 2), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"GOSPA: {name} holds NaN or inf")
    return points
