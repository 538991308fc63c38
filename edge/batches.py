"""A tracker snapshot as the wire's TrackBatch: what one node tells HQ each cycle.

The tracker works in the post's ENU frame; the wire carries both that and
WGS84, so HQ can fuse across posts without knowing each post's frame, and
the covariances stay in ENU metres as the convention says.
"""

from __future__ import annotations

import numpy as np

from edge.tracking.table import Tracks
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, TrackStatus


def existence_probability(score: np.ndarray) -> np.ndarray:
    """The track score is a log-likelihood ratio (target vs clutter); as a probability."""
    return 1.0 / (1.0 + np.exp(-np.clip(score, -50.0, 50.0)))


def track_status(confirmed: bool, updated: bool) -> TrackStatus:
    """`updated`: the track had a measurement in the scan the batch reports. A track's
    misses count every scan it ever missed, so they cannot tell coasting now."""
    if not confirmed:
        return TrackStatus.TENTATIVE
    return TrackStatus.CONFIRMED if updated else TrackStatus.COASTING


def track_batch(tracks: Tracks, frame: EnuFrame, *, site: str, node: str, seq: int,
                state_time: float, sent: float, classes: dict[int, str] | None = None,
                counts: dict[int, int] | None = None,
                confirmed_only: bool = True) -> TrackBatch:  # fmt: skip
    """The snapshot's tracks (confirmed only, by default) as one TrackBatch.

    `state_time` is the time the snapshot's states refer to (the last scan);
    `classes` maps a track id to its class where the node has one, `counts` to
    how many targets it stands for where more than one (`edge.track_groups`).
    """
    classes = classes or {}
    counts = counts or {}
    keep = tracks.confirmed if confirmed_only else np.ones(len(tracks), bool)
    index = np.flatnonzero(keep)
    x = tracks.x[index]
    # Ground targets: lat, lon below the track; height that of the ground.
    lat, lon, _ = frame.to_geodetic(x[:, 0], x[:, 1], np.zeros(len(index)))
    alt = np.full(len(index), frame.alt)  # on the ground: flat at the post's height
    quality = existence_probability(tracks.score[index])
    updated = tracks.last_update >= state_time  # measured in the scan the batch reports
    wire_tracks = [
        Track(
            track_id=int(tracks.ids[k]), time=state_time,
            lat=float(lat[j]), lon=float(lon[j]), alt=float(alt[j]),
            position_enu=(float(x[j, 0]), float(x[j, 1])),
            velocity_enu=(float(x[j, 2]), float(x[j, 3])),
            position_covariance=tracks.P[k, :2, :2].tolist(),
            velocity_covariance=tracks.P[k, 2:, 2:].tolist(),
            state_covariance=tracks.P[k].tolist(),
            target_class=classes.get(int(tracks.ids[k]), "unknown"),
            count=max(1, counts.get(int(tracks.ids[k]), 1)),
            status=track_status(bool(tracks.confirmed[k]), bool(updated[k])),
            quality=float(quality[j]), hits=int(tracks.hits[k]), sensors=tracks.sensors(k),
            last_measured=_time_or_none(tracks.last_update[k]),
        )
        for j, k in enumerate(index)
    ]  # fmt: skip
    origin = (frame.lat, frame.lon, frame.alt)
    return TrackBatch(site=site, node=node, seq=seq, sent=sent, frame_origin=origin,
                      tracks=wire_tracks)  # fmt: skip


def _time_or_none(t: float) -> float | None:
    """A track never measured has no time of its newest detection (the table holds -inf)."""
    return float(t) if np.isfinite(t) else None
