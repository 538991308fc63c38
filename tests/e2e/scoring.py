"""Scoring HQ's fused picture against the simulator's ground truth, for the whole-stack
tests: the scorer is `bench.scene_score`, shared with the scene benchmark. `score` scores
every target present (these tests pick windows where the cameras see them all)."""

from __future__ import annotations

import numpy as np

from bench.scene_score import MATCH_M, MAX_AGE_S, Picture, PictureScore, Truth, score_picture

__all__ = ["MATCH_M", "MAX_AGE_S", "Picture", "PictureScore", "Truth", "score"]


def score(truth: Truth, picture: Picture, t0: float, t1: float,
          classes: set[str]) -> PictureScore:  # fmt: skip
    """The picture once a second from t0 to t1, every target of `classes` counted."""
    everyone = {target for target in truth.classes()}
    return score_picture(truth, picture, np.arange(t0, t1, 1.0), lambda t: everyone,
                         tuple(sorted(classes)))  # fmt: skip
