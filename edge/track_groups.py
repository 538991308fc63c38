"""How many targets each track stands for, where the tracker cannot keep them apart.

Walkers 2–3 m apart are separate blobs in the image, but georeferencing moves
all of a frame's ground points together by metres, so the tracker often keeps
one track for the group. The track then stands for all of them, and HQ (the
map's "3 people", a distress alert's size) needs to know how many.

Each scan, a confirmed track's members are the detection it used and those
linked to it (each within `LINK_M` of another member, so a file of walkers
links end to end) that no confirmed track used; a free detection near two
tracks' groups joins the nearer. A member whose own track is confirmed has
split off and counts there, and a track that absorbed another's members (a
merge) counts them, so the history of merges and splits lives in who uses
which detection. A person track's blob may itself hold several
people side by side: it counts as its ground width over one person's
(`PERSON_WIDTH_M`), rounded.

Each member is detected in only part of the frames, so one scan undercounts;
the track's count is a high quantile of its counts over the last
`WINDOW_S` seconds of scans in which it was measured.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

LINK_M = 3.5  # members of one group walk at most this far from the next member
PERSON_WIDTH_M = 1.2  # a blob counts as two people only when clearly wider than one, blurred
WINDOW_S = 5.0
QUANTILE = 0.8  # of the window's counts: members are missed, clutter is rare this close


@dataclass
class GroupCounts:
    window_s: float = WINDOW_S
    history: dict[int, deque[tuple[float, int]]] = field(default_factory=dict)

    def count(self, t: float, tracks, z: np.ndarray, widths_m: np.ndarray | None = None,
              classes: dict[int, str] | None = None) -> None:  # fmt: skip
        """Book the scan at time t: detections z (N, 2) ENU m, in the order the tracker
        had them (`tracks.measurement_track`), their ground widths across the line of
        sight (m; None: unknown), and the tracks' classes."""
        alive = {int(i) for i in tracks.ids}
        for track_id in [i for i in self.history if i not in alive]:
            del self.history[track_id]
        owners = np.asarray(tracks.measurement_track)
        if len(owners) != len(z):
            raise ValueError(f"{len(z)} detections, but the tracks' scan had {len(owners)}")
        if not len(z):
            return
        confirmed = set(tracks.ids[tracks.confirmed].tolist())
        person = {i for i, name in (classes or {}).items() if name == "person"}
        for track_id, members in groups_of(z, owners, confirmed).items():
            if track_id in person and widths_m is not None:
                n = sum(people_in(widths_m[k]) for k in members)
            else:
                n = len(members)
            recent = self.history.setdefault(track_id, deque())
            recent.append((t, n))
            while recent[0][0] < t - self.window_s:
                recent.popleft()

    def counts(self) -> dict[int, int]:
        """Track id -> how many targets it stands for (tracks with none booked: 1)."""
        return {
            track_id: max(1, int(round(np.quantile([n for _, n in recent], QUANTILE))))
            for track_id, recent in self.history.items()
        }


def groups_of(z: np.ndarray, owners: np.ndarray, confirmed: set[int]) -> dict[int, list[int]]:
    """Confirmed track id -> the detections of its group: the one it used, and the
    detections no confirmed track used that link to it (each within `LINK_M` of the
    next). A free detection that links to several tracks' groups joins the one whose
    detection is nearest, so that no detection is counted twice."""
    is_anchor = np.array([int(o) in confirmed for o in owners], bool)
    anchors = np.flatnonzero(is_anchor)
    groups = {int(owners[j]): [int(j)] for j in anchors}
    if not len(anchors):
        return groups
    distance = np.linalg.norm(z[:, None] - z[None], axis=2)
    # Free detections reachable from any anchor through free detections.
    reached = is_anchor.copy()
    frontier = is_anchor.copy()
    while frontier.any():
        near = (distance[frontier] <= LINK_M).any(axis=0) & ~reached
        reached |= near
        frontier = near
    for m in np.flatnonzero(reached & ~is_anchor):
        nearest = anchors[int(np.argmin(distance[m, anchors]))]
        groups[int(owners[nearest])].append(int(m))
    return groups


def people_in(width_m: float) -> int:
    """People side by side in one blob of this ground width (at least one)."""
    if not np.isfinite(width_m):
        return 1
    return max(1, int(round(width_m / PERSON_WIDTH_M)))


def ground_widths(detections, pose, georeferencer) -> np.ndarray:
    """Each detection's width on the ground across the line of sight, m: between where
    its box's bottom corners meet the ground (NaN where either misses it)."""
    if not detections:
        return np.empty(0)
    x0 = [d.box[0] for d in detections]
    x1 = [d.box[2] for d in detections]
    bottom = [d.box[3] for d in detections]
    corners = georeferencer.locate(pose, np.r_[x0, x1], np.r_[bottom, bottom])
    n = len(detections)
    return np.hypot(*(corners.z[:n] - corners.z[n:]).T)
