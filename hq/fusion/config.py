"""What fusion is told (`FusionConfig`) and what it counts (`FusionCounters`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
