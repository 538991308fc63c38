"""Scoring HQ's fused picture against the simulator's ground truth.

The picture is sampled once a second: at time t each fused track stands at its
newest history point no older than `MAX_AGE_S` (HQ's store keeps every fused
update), and the truth at its row nearest t. Positions are ENU in the first
post's frame, which is HQ's frame in these deployments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import motmetrics
import numpy as np

from bench.gospa import gospa

MAX_AGE_S = 1.5  # a fused track not updated for this long is not drawn at t
MATCH_M = 10.0  # a fused track this close to a target is following it (MOT distance)


@dataclass(frozen=True)
class Truth:
    header: dict
    times: np.ndarray
    rows: list[dict]

    @classmethod
    def read(cls, path: str | Path) -> Truth:
        lines = [json.loads(line) for line in open(path)]
        rows = [r for r in lines[1:] if r.get("kind") == "truth"]
        return cls(lines[0], np.array([r["t"] for r in rows]), rows)

    def classes(self) -> dict[str, str]:
        return {t["id"]: t["class"] for t in self.header["targets"]}

    def at(self, t: float) -> dict[str, np.ndarray]:
        row = self.rows[int(np.argmin(np.abs(self.times - t)))]
        return {x["id"]: np.array(x["enu"][:2]) for x in row["targets"]}


@dataclass(frozen=True)
class Picture:
    """Every fused track's history: (time, e, n) sorted by time."""

    histories: dict[int, np.ndarray]

    @classmethod
    def from_store(cls, store, t0: float, t1: float) -> Picture:
        histories = {}
        for track in store.current_tracks():
            points = store.track_history(track.global_id, t0 - MAX_AGE_S, t1)
            if points:
                histories[track.global_id] = np.array([(p.time, p.e, p.n) for p in points])
        return cls(histories)

    def at(self, t: float) -> dict[int, np.ndarray]:
        where = {}
        for gid, history in self.histories.items():
            k = int(np.searchsorted(history[:, 0], t, side="right")) - 1
            if k >= 0 and t - history[k, 0] <= MAX_AGE_S:
                where[gid] = history[k, 1:]
        return where


@dataclass(frozen=True)
class Score:
    gospa_mean: float
    gospa_missed_mean: float  # its missed-target part (c/2 per target missed), m
    gospa_false_mean: float  # its false-track part (c/2 per false track), m
    mota: float
    idf1: float
    id_switches: int
    first_confirmation_s: dict[str, float]  # per target: from its first sample to its first match


def score(truth: Truth, picture: Picture, t0: float, t1: float, classes: set[str],
          gospa_c: float = 20.0) -> Score:  # fmt: skip
    kinds = truth.classes()
    numbers = {target: k for k, target in enumerate(kinds)}
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    totals = np.zeros(3)
    first_seen, first_matched = {}, {}
    samples = np.arange(t0, t1, 1.0)
    for t in samples:
        targets = {k: v for k, v in truth.at(t).items() if kinds[k] in classes}
        tracks = picture.at(t)
        target_ids, target_xy = list(targets), np.array(list(targets.values())).reshape(-1, 2)
        track_ids, track_xy = list(tracks), np.array(list(tracks.values())).reshape(-1, 2)
        result = gospa(target_xy, track_xy, c=gospa_c, p=1.0)
        totals += (result.total, result.missed, result.false)
        squared = ((target_xy[:, None] - track_xy[None]) ** 2).sum(axis=2)
        distances = np.where(squared <= MATCH_M**2, squared, np.nan)
        # motmetrics wants numbers for ids: a target's number is its place in the header.
        accumulator.update([numbers[k] for k in target_ids], track_ids, distances)
        for k, target in enumerate(target_ids):
            first_seen.setdefault(target, t)
            if len(track_ids) and np.nanmin(np.append(distances[k], np.inf)) <= MATCH_M**2:
                first_matched.setdefault(target, t)
    summary = motmetrics.metrics.create().compute(
        accumulator, metrics=["mota", "idf1", "num_switches"], name="picture")
    mean = totals / max(len(samples), 1)
    return Score(
        gospa_mean=float(mean[0]), gospa_missed_mean=float(mean[1]),
        gospa_false_mean=float(mean[2]), mota=float(summary["mota"].iloc[0]),
        idf1=float(summary["idf1"].iloc[0]), id_switches=int(summary["num_switches"].iloc[0]),
        first_confirmation_s={k: first_matched.get(k, np.inf) - first_seen[k]
                              for k in first_seen},
    )  # fmt: skip
