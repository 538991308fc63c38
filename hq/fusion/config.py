"""What fusion is told (`FusionConfig`) and what it counts (`FusionCounters`).

`FusionParameters` is HQ's `[fusion]` section (hq/config.py), the one place
fusion's defaults live; `FusionConfig` adds what HQ sets at start (the frame's
origin, the first free global id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FusionParameters(BaseModel):
    """Fusion parameters; times in seconds, distances as squared Mahalanobis distances."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    process_noise: float = Field(default=0.1, gt=0)  # q, m²/s³, to predict between updates
    gate_probability: float = Field(default=0.9999, gt=0, lt=1)  # chi-square gate, 2 or 4 dof
    informative_velocity_std: float = Field(default=5.0, gt=0)  # m/s; vaguer: does not gate
    unknown_velocity_std: float = 50.0  # m/s; a track without a usable velocity gets this
    merge_updates: int = Field(default=3, ge=1)  # K: consecutive proposals before a merge
    break_after_misses: int = Field(default=3, ge=1)  # N: gate failures before a link breaks
    switch_margin: float = Field(default=4.0, ge=0)  # a shared link switches only to a global
    switch_updates: int = Field(default=3, ge=1)  # this much closer, M updates in a row
    late_tolerance: float = Field(default=2.0, ge=0)  # older than its global track: history
    coast_after: float = Field(default=5.0, gt=0)  # no node saw the object this long: coasting
    end_after: float = 30.0  # ... this long: ended
    ci_criterion: Literal["determinant", "trace"] = "determinant"
    # A node track that names its class without probabilities (a wire 1.0 sender, or a
    # node without calibrated classes) is believed this much; the rest is "unknown".
    unstated_class_belief: float = Field(default=0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self):
        if not self.unknown_velocity_std > self.informative_velocity_std:
            raise ValueError("unknown_velocity_std must be above informative_velocity_std")
        if not self.coast_after < self.end_after:
            raise ValueError("coast_after must be below end_after")
        return self


class FusionConfig(FusionParameters):
    """`FusionParameters` and what HQ sets at start."""

    origin: tuple[float, float, float] | None = None  # HQ's ENU frame; None: the first post's
    # Global ids continue after those HQ stored before a restart, so none is used twice.
    first_global_id: int = Field(default=1, ge=1)


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
