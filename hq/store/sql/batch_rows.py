"""What a group of IngestBatches leaves in each table, as rows or columns to write in bulk.

Written in one transaction, the group must leave the database as writing its
batches one after another would. The tables of current state (node tracks,
fused tracks) get only the row that would have won for each key: the upserts
keep the newest by time (the later one on a tie), and a group updates the same
tracks again and again, so most of those rows would be overwritten within the
transaction anyway. History keeps every point; of two with one (track, time)
the later replaces the earlier.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np

from hq.store.records import (
    FusedTracks,
    HistoryPoints,
    IngestBatch,
    NodeTrack,
    NodeTracks,
    node_key,
)
from hq.store.sql.reads import POINT_COLUMNS


def node_keys(batches: Sequence[IngestBatch]) -> list[str]:
    """Every node the batches refer to, sorted (rows are locked in one order by every writer)."""
    keys = set()
    for batch in batches:
        keys.update(node_key(s.site, s.node) for s in batch.statuses)
        tracks = batch.node_tracks
        if isinstance(tracks, NodeTracks):  # all of one node: no track read back from its JSON
            if len(tracks):
                keys.add(tracks.node_key)
        else:
            keys.update(t.node_key for t in tracks)
        if batch.node_key is not None:
            keys.add(batch.node_key)
    return sorted(keys)


def node_track_rows(batches: Sequence[IngestBatch]) -> list[tuple]:
    """(node_key, track_id, global_id, time, lat, lon, status, target_class, track JSON), the
    newest per (node, track), in key order."""
    newest: dict[tuple[str, int], tuple] = {}  # (node, track id) -> row; row[3] is the time
    for batch in batches:
        for row in _node_track_rows_of(batch.node_tracks):
            kept = newest.get(row[:2])
            if kept is None or row[3] >= kept[3]:
                newest[row[:2]] = row
    return [newest[key] for key in sorted(newest)]


def _node_track_rows_of(tracks: Sequence[NodeTrack]) -> Iterable[tuple]:
    if isinstance(tracks, NodeTracks):
        return zip(repeat(tracks.node_key), tracks.track_id, tracks.global_id, tracks.time,
                   tracks.lat, tracks.lon, tracks.status, tracks.target_class,
                   tracks.track_json)  # fmt: skip
    return map(_node_track_row, tracks)


def _node_track_row(entry: NodeTrack) -> tuple:
    t = entry.track
    return (entry.node_key, t.track_id, entry.global_id, t.time, t.lat, t.lon, str(t.status),
            str(t.target_class), t.model_dump_json())  # fmt: skip


def fused_columns(batches: Sequence[IngestBatch]) -> list[list] | None:
    """FUSED_COLUMNS as lists (covariance and sources as JSON text), the newest per global
    id, by global id; None when the batches hold no fused track."""
    tracks = FusedTracks.concat([FusedTracks.of(b.fused_tracks) for b in batches])
    if not len(tracks):
        return None
    tracks = tracks.take(newest_per_key(tracks.global_id, tracks.time))
    return [tracks.global_id.tolist(), tracks.time.tolist(), tracks.lat.tolist(),
            tracks.lon.tolist(), tracks.alt.tolist(), *tracks.state.T.tolist(),
            [json.dumps(c) for c in tracks.covariance.tolist()],
            [str(c) for c in tracks.target_class], [str(s) for s in tracks.status],
            tracks.quality.tolist(), [json.dumps(list(s)) for s in tracks.sources]]  # fmt: skip


def newest_per_key(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Indices, in key order, of the row each key keeps when all are upserted one after
    another with a `time >=` guard: the last of the key's rows with its greatest time."""
    order = np.lexsort((np.arange(keys.size), times, keys))  # by key, then time, then position
    last = np.append(keys[order][1:] != keys[order][:-1], True)
    return order[last]


def point_columns(batches: Sequence[IngestBatch]) -> list[list] | None:
    """POINT_COLUMNS as lists, one point per (track, time) (the later one), in key order:
    each track's points go into its range of the index together (a few pages) rather than
    one page per point. None when there are none."""
    points = HistoryPoints.concat([HistoryPoints.of(b.history) for b in batches])
    if not len(points):
        return None
    order = np.lexsort((np.arange(len(points)), points.time, points.global_id))
    gid, t = points.global_id[order], points.time[order]
    last = np.append((gid[1:] != gid[:-1]) | (t[1:] != t[:-1]), True)
    points = points.take(order[last])
    return [getattr(points, c).tolist() for c in POINT_COLUMNS]
