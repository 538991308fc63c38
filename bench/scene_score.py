"""Scoring a tracked picture against the simulator's ground truth, per target and per group.

Shared by the scene benchmark (`python -m bench scenes`) and the whole-stack tests.

The picture is sampled once a second. At time t a track stands at its newest
point no older than `MAX_AGE_S`; the truth at its row nearest t. Positions are
ENU in the scenario's first post's frame (HQ's frame in these deployments; a
node's tracks are brought into it through their WGS84 positions).

Which targets count at t: those in some camera's view (`sim_hw`'s renderer
decides, as it decides what a frame shows), or for one node, in one of its
own cameras' view. A track within `MATCH_M` of a target that is present but in
no camera's view (one just walking out of the picture) is left out: neither
credited nor charged.

Figures, per picture (`PictureScore`):
- MOTA, IDF1, ID switches (motmetrics, `MATCH_M` gate) and ID switches per
  target per 5 minutes of target time in view;
- GOSPA (c = 20 m, p = 1, alpha = 2) and its missed and false parts;
- per class, the share of matched target-samples whose track has the
  target's class ("unknown" is wrong);
- where the loss comes from: the share of missed target-samples that had a
  track within `MATCH_M` serving another target (merged groups), and the share
  of false track-samples farther than `FAR_M` from every target or within
  `WARM_SPOT_M` of a warm ground spot.

Groups (the wire Track's `count`: how many objects a track stands for). The
per-target figures count each track once, whatever its count: a group of three
on one track is one target followed and two missed. The count figures credit
a track with count k as k hypotheses at its position, so
one track can follow up to k targets within `MATCH_M`; they are MOTA and IDF1
over those hypotheses (ids (gid, j)), and the count error: |sum of the counts of the tracks
drawn - targets in view| summed over samples, over the target-samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import motmetrics
import numpy as np

from bench.gospa import gospa

MAX_AGE_S = 1.5  # a track not updated for this long is not drawn at t
MATCH_M = 10.0  # a track this close to a target is following it (MOT distance)
FAR_M = 20.0  # a false track farther than this from every target stands on nothing
WARM_SPOT_M = 5.0  # a false track this close to a warm ground spot stands on it
GOSPA_C = 20.0
CLASSES = ("person", "vehicle", "animal")


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

    def warm_spots(self) -> np.ndarray:
        """(K, 2) ENU of the scene's warm ground spots (none in older truth files)."""
        spots = [s["enu"] for s in self.header.get("warm_spots", [])]
        return np.array(spots, dtype=float).reshape(-1, 2)


@dataclass(frozen=True)
class Picture:
    """Every track's history: rows (time, e, n, count) sorted by time, and the track's class
    at each row (when the source keeps classes per row) or its one class."""

    histories: dict[Hashable, np.ndarray]
    classes: dict[Hashable, list[str]] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store, t0: float, t1: float) -> Picture:
        """HQ's fused picture. The store keeps each fused track's history of positions but
        only its newest class, and the count only on the node tracks linked to it (their
        newest state): each history row gets the track's last class and the largest count
        of its node tracks."""
        counts: dict[int, int] = {}
        for node_track in store.node_tracks():
            if node_track.global_id is not None:
                gid = node_track.global_id
                counts[gid] = max(counts.get(gid, 1), node_track.track.count)
        histories, classes = {}, {}
        for track in store.current_tracks():
            points = store.track_history(track.global_id, t0 - MAX_AGE_S, t1)
            if points:
                gid = track.global_id
                count = counts.get(gid, 1)
                histories[gid] = np.array([(p.time, p.e, p.n, count) for p in points])
                classes[gid] = [str(track.target_class)] * len(points)
        return cls(histories, classes)

    def at(self, t: float) -> dict[Hashable, np.ndarray]:
        """Each drawn track's position at t."""
        return {tid: row[1:3] for tid, row in self._rows_at(t).items()}

    def sightings_at(self, t: float) -> dict[Hashable, tuple[np.ndarray, str, int]]:
        """Each drawn track's (position, class, count) at t."""
        sightings = {}
        for tid, (k, row) in self._indices_at(t).items():
            labels = self.classes.get(tid)
            target_class = labels[k] if labels else "unknown"
            sightings[tid] = (row[1:3], target_class, max(int(row[3]), 1))
        return sightings

    def _rows_at(self, t: float) -> dict[Hashable, np.ndarray]:
        return {tid: row for tid, (_, row) in self._indices_at(t).items()}

    def _indices_at(self, t: float) -> dict[Hashable, tuple[int, np.ndarray]]:
        where = {}
        for tid, history in self.histories.items():
            k = int(np.searchsorted(history[:, 0], t, side="right")) - 1
            if k >= 0 and t - history[k, 0] <= MAX_AGE_S:
                where[tid] = (k, history[k])
        return where


@dataclass(frozen=True)
class PictureScore:
    samples: int
    target_samples: int  # targets in view, summed over samples
    mota: float
    idf1: float
    id_switches: int
    switches_per_target_5min: float
    gospa_mean: float
    gospa_missed_mean: float  # c/2 per target missed, m
    gospa_false_mean: float  # c/2 per false track, m
    count_mota: float  # a track of count k as k hypotheses
    count_idf1: float
    count_error: float  # |sum of counts - targets| over target-samples
    class_accuracy: dict[str, float | None]  # per true class, over matched target-samples
    class_samples: dict[str, int]
    merged_miss_share: float | None  # misses with a track within MATCH_M serving another
    false_far_share: float | None  # false track-samples > FAR_M from every target
    false_warm_share: float | None  # false track-samples on a warm ground spot
    first_confirmation_s: dict[str, float]  # per target: first sample in view to first match


# Which targets count at time t: a set of target ids (those in the cameras' view).
InView = Callable[[float], set[str]]


def score_picture(truth: Truth, picture: Picture, samples: np.ndarray, in_view: InView,
                  classes: tuple[str, ...] = CLASSES) -> PictureScore:  # fmt: skip
    kinds = truth.classes()
    numbers = {target: k for k, target in enumerate(kinds)}
    per_target = motmetrics.MOTAccumulator(auto_id=True)
    per_count = motmetrics.MOTAccumulator(auto_id=True)
    gospa_sum = np.zeros(3)
    warm = truth.warm_spots()
    tally = _Tally()
    # motmetrics takes numbers for ids: each track (and each of a group track's replicas)
    # gets one the first time it is drawn.
    numbers_of_tracks: dict[Hashable, int] = {}

    def number(key: Hashable) -> int:
        return numbers_of_tracks.setdefault(key, len(numbers_of_tracks))

    for t in samples:
        present = {k: v for k, v in truth.at(t).items() if kinds[k] in classes}
        visible = in_view(t)
        targets = {k: v for k, v in present.items() if k in visible}
        unseen = np.array([v for k, v in present.items() if k not in visible]).reshape(-1, 2)
        drawn = _cared_for(picture.sightings_at(t), targets, unseen)
        tracks = {number(tid): sighting for tid, sighting in drawn.items()}
        target_ids = list(targets)
        target_xy = np.array(list(targets.values())).reshape(-1, 2)
        track_ids = list(tracks)
        track_xy = np.array([s[0] for s in tracks.values()]).reshape(-1, 2)
        g = gospa(target_xy, track_xy, c=GOSPA_C, p=1.0)
        gospa_sum += (g.total, g.missed, g.false)
        distances = _gated(target_xy, track_xy)
        per_target.update([numbers[k] for k in target_ids], track_ids, distances)
        replicas = [(tid, j) for tid in track_ids for j in range(tracks[tid][2])]
        replica_xy = np.array([tracks[tid][0] for tid, _ in replicas]).reshape(-1, 2)
        per_count.update([numbers[k] for k in target_ids],
                         [number((tid, j)) for tid, j in replicas],
                         _gated(target_xy, replica_xy))  # fmt: skip
        tally.count_error += abs(sum(s[2] for s in tracks.values()) - len(targets))
        tally.target_samples += len(targets)
        tally.frame(t, target_ids, target_xy, tracks, kinds, distances, warm)
    events = per_target.mot_events
    tally.from_events(events)
    metrics = motmetrics.metrics.create()
    names = ["mota", "idf1", "num_switches"]
    single = metrics.compute(per_target, metrics=names, name="per_target")
    counted = metrics.compute(per_count, metrics=["mota", "idf1"], name="per_count")
    switches = int(single["num_switches"].iloc[0])
    target_minutes = tally.target_samples * np.mean(np.diff(samples)) if len(samples) > 1 else 0
    return PictureScore(
        samples=len(samples), target_samples=tally.target_samples,
        mota=_number(single["mota"].iloc[0]), idf1=_number(single["idf1"].iloc[0]),
        id_switches=switches,
        switches_per_target_5min=switches / (target_minutes / 300.0) if target_minutes else 0.0,
        gospa_mean=float(gospa_sum[0] / max(len(samples), 1)),
        gospa_missed_mean=float(gospa_sum[1] / max(len(samples), 1)),
        gospa_false_mean=float(gospa_sum[2] / max(len(samples), 1)),
        count_mota=_number(counted["mota"].iloc[0]), count_idf1=_number(counted["idf1"].iloc[0]),
        count_error=tally.count_error / max(tally.target_samples, 1),
        class_accuracy={c: tally.class_accuracy(c) for c in classes},
        class_samples={c: tally.class_total.get(c, 0) for c in classes},
        merged_miss_share=_share(tally.merged_misses, tally.misses),
        false_far_share=_share(tally.false_far, tally.false_samples),
        false_warm_share=_share(tally.false_warm, tally.false_samples),
        first_confirmation_s={k: tally.first_matched.get(k, np.inf) - tally.first_seen[k]
                              for k in tally.first_seen},
    )  # fmt: skip


def _cared_for(sightings: dict, targets: dict, unseen: np.ndarray) -> dict:
    """The tracks scored at t: all but those following a target no camera sees now."""
    if not len(unseen):
        return sightings
    kept = {}
    seen_xy = np.array(list(targets.values())).reshape(-1, 2)
    for tid, sighting in sightings.items():
        near_unseen = np.min(np.hypot(*(unseen - sighting[0]).T)) <= MATCH_M
        near_seen = len(seen_xy) and np.min(np.hypot(*(seen_xy - sighting[0]).T)) <= MATCH_M
        if not near_unseen or near_seen:
            kept[tid] = sighting
    return kept


def _gated(target_xy: np.ndarray, track_xy: np.ndarray) -> np.ndarray:
    """Squared distances, NaN beyond the match gate (motmetrics' "cannot pair")."""
    squared = ((target_xy[:, None] - track_xy[None]) ** 2).sum(axis=2)
    return np.where(squared <= MATCH_M**2, squared, np.nan)


class _Tally:
    """What the frames say beyond motmetrics' figures: classes of matches, why a target
    was missed, where false tracks stand."""

    def __init__(self):
        self.target_samples = 0
        self.count_error = 0.0
        self.first_seen: dict[str, float] = {}
        self.first_matched: dict[str, float] = {}
        self.frames: list[tuple] = []  # per sample: (target ids, target_xy, tracks, ...)
        self.class_right: dict[str, int] = {}
        self.class_total: dict[str, int] = {}
        self.misses = self.merged_misses = 0
        self.false_samples = self.false_far = self.false_warm = 0

    def frame(self, t, target_ids, target_xy, tracks, kinds, distances, warm) -> None:
        for k, target in enumerate(target_ids):
            self.first_seen.setdefault(target, t)
            if len(tracks) and np.any(np.isfinite(distances[k])):
                self.first_matched.setdefault(target, t)
        self.frames.append((target_ids, target_xy, tracks, kinds, warm))

    def from_events(self, events) -> None:
        """Walk motmetrics' per-frame events (MATCH, SWITCH, MISS, FP) beside the frames."""
        for frame_id, (target_ids, target_xy, tracks, kinds, warm) in enumerate(self.frames):
            if frame_id not in events.index.get_level_values(0):
                continue
            frame = events.loc[frame_id]
            matched = frame[frame["Type"].isin(["MATCH", "SWITCH"])]
            serving = set(matched["HId"])
            by_number = {n: k for k, n in enumerate(_numbers_of(target_ids, kinds))}
            for _, row in matched.iterrows():
                target = target_ids[by_number[row["OId"]]]
                true_class = kinds[target]
                self.class_total[true_class] = self.class_total.get(true_class, 0) + 1
                if tracks[row["HId"]][1] == true_class:
                    self.class_right[true_class] = self.class_right.get(true_class, 0) + 1
            for _, row in frame[frame["Type"] == "MISS"].iterrows():
                self.misses += 1
                xy = target_xy[by_number[row["OId"]]]
                if any(h in serving and np.hypot(*(tracks[h][0] - xy)) <= MATCH_M
                       for h in tracks):  # fmt: skip
                    self.merged_misses += 1
            for _, row in frame[frame["Type"] == "FP"].iterrows():
                self.false_samples += 1
                xy = tracks[row["HId"]][0]
                if not len(target_xy) or np.min(np.hypot(*(target_xy - xy).T)) > FAR_M:
                    self.false_far += 1
                if len(warm) and np.min(np.hypot(*(warm - xy).T)) <= WARM_SPOT_M:
                    self.false_warm += 1

    def class_accuracy(self, target_class: str) -> float | None:
        total = self.class_total.get(target_class, 0)
        return self.class_right.get(target_class, 0) / total if total else None


def _numbers_of(target_ids: list[str], kinds: dict[str, str]) -> list[int]:
    order = {target: k for k, target in enumerate(kinds)}
    return [order[t] for t in target_ids]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _number(value) -> float:
    value = float(value)
    return value if np.isfinite(value) else float("nan")
