"""Each track's class: what its detections looked like, and whether it was seen to drive.

A single frame's guess is noisy (a blob's size depends on blur, pose and
neighbours), so a track takes the class most of its detections had, recent
ones counting more; "unknown" detections cast no vote, so they never
overwrite a known class. A detection that comes with class probabilities (the
learned thermal detector's, calibrated) splits its one vote among the classes
by them: a sure person counts as a whole person, a toss-up as half of each.

Size alone cannot tell a running vehicle whose hot engine alone stands out
from an animal, so speed decides: a track seen to move faster than anything
on foot, in two successive stretches of its own detections, is a vehicle for
the rest of its life. Two stretches, not the filter's velocity: when a track
jumps onto another target's detections (a track coasting beside a passing
pickup, then taking a camel's blob), its velocity is briefly fast and sure,
and a single stretch across the jump looks like driving. A vehicle keeps its
speed over both stretches; a jump spans one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

CLASS_HALF_LIFE_S = 30.0  # a track's class votes count half as much this much later
FOOT_SPEED_MS = 5.0  # no person or animal keeps this up: a track surely faster is a vehicle
STRETCH_S = 1.0  # the length of each of the two stretches the speed is judged over
SHORTEST_STRETCH_S = 0.5  # a stretch shorter than this (detections missed) judges nothing


@dataclass
class _Witness:
    t: float
    position: np.ndarray  # (2,) ENU m
    covariance: np.ndarray  # (2, 2) m²


@dataclass
class ClassVotes:
    half_life_s: float = CLASS_HALF_LIFE_S
    tallies: dict[int, dict[str, float]] = field(default_factory=dict)
    voted_at: dict[int, float] = field(default_factory=dict)
    witnesses: dict[int, deque[_Witness]] = field(default_factory=dict)
    driving: set[int] = field(default_factory=set)  # tracks seen to move faster than on foot

    def vote(self, t: float, tracks, z: np.ndarray, R: np.ndarray, labels: list[str],
             probabilities: list[dict[str, float] | None] | None = None) -> None:
        """Book the scan at time t: detections z (N, 2), R (N, 2, 2), classes `labels`,
        and per detection its class probabilities where the detector gives them.

        `tracks` is the tracker's snapshot after this very scan: each detection
        witnesses the track the tracker's association gave it
        (`tracks.measurement_track`), and none where it gave it to no track, so
        the class and the track's motion never disagree about who saw what.
        """
        alive = {int(i) for i in tracks.ids}
        self._forget_deleted(alive)
        owners = tracks.measurement_track
        if len(owners) != len(labels):
            raise ValueError(f"{len(labels)} detections, but the tracks' scan had {len(owners)}")
        for j, label in enumerate(labels):
            track_id = int(owners[j])
            if track_id not in alive:
                continue  # used by no track, or by one the scan deleted
            self._witness(track_id, _Witness(t, z[j].copy(), R[j].copy()))
            shares = None if probabilities is None else probabilities[j]
            if shares:
                self._add(track_id, t, shares)
            elif label != "unknown":
                self._add(track_id, t, {label: 1.0})

    def classes(self) -> dict[int, str]:
        """Track id -> its class, for the tracks with a known-class detection or seen driving."""
        voted = {i: max(tally, key=tally.get) for i, tally in self.tallies.items()}
        return voted | {i: "vehicle" for i in self.driving}

    def _forget_deleted(self, alive: set[int]) -> None:
        for track_id in [i for i in self.witnesses if i not in alive]:
            del self.witnesses[track_id]
            self.tallies.pop(track_id, None)
            self.voted_at.pop(track_id, None)
            self.driving.discard(track_id)

    def _add(self, track_id: int, t: float, shares: dict[str, float]) -> None:
        """One vote, split among classes by `shares` (summing to 1)."""
        tally = self.tallies.setdefault(track_id, {})
        decay = 0.5 ** ((t - self.voted_at.get(track_id, t)) / self.half_life_s)
        for name in tally:
            tally[name] *= decay
        for name, share in shares.items():
            tally[name] = tally.get(name, 0.0) + share
        self.voted_at[track_id] = t

    def _witness(self, track_id: int, witness: _Witness) -> None:
        recent = self.witnesses.setdefault(track_id, deque())
        recent.append(witness)
        while recent[0].t < witness.t - 2.5 * STRETCH_S:
            recent.popleft()
        if track_id not in self.driving and drove(list(recent)):
            self.driving.add(track_id)


def drove(recent: list[_Witness]) -> bool:
    """Whether the track moved surely faster than on foot over both of its last two
    stretches of about `STRETCH_S` each (witnesses in time order)."""
    last = recent[-1]
    middle = _nearest_in_time(recent, last.t - STRETCH_S)
    first = _nearest_in_time(recent, middle.t - STRETCH_S)
    return _surely_fast(first, middle) and _surely_fast(middle, last)


def _nearest_in_time(recent: list[_Witness], t: float) -> _Witness:
    return min(recent, key=lambda w: abs(w.t - t))


def _surely_fast(start: _Witness, end: _Witness) -> bool:
    """The move from start to end is faster than on foot by two standard deviations of
    its length (the two positions' errors; the trace bounds the variance along any line)."""
    elapsed = end.t - start.t
    if elapsed < SHORTEST_STRETCH_S:
        return False
    moved = float(np.hypot(*(end.position - start.position)))
    spread = float(np.sqrt(np.trace(start.covariance + end.covariance)))
    return moved - 2.0 * spread > FOOT_SPEED_MS * elapsed
