"""Fused tracks: the current picture (filtered and paged), one track with its sources, and
an operator's change of a track's class or affiliation (audited).

The list is written straight from the store's columns (`Store.current_track_table`) to
JSON (`track_list_json`), not through a TrackOut per track: at 10,000 tracks, making
the models cost more than the query itself. Its bytes are those of TrackList's own
serialiser, which the tests check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from hq.api.deps import Context, OperatorJson, Viewer
from hq.api.models import (
    Affiliation,
    TrackDetailOut,
    TrackLabelIn,
    TrackList,
    TrackOut,
    label_out,
    track_detail_out,
    track_out,
)
from hq.api.routers import (
    AUTH_ERRORS,
    BODY_ERRORS,
    MAX_ID,
    ClassesParam,
    PageParam,
    bbox_param,
    check_page,
    errors,
)
from hq.store.records import BBox, FusedTracks, TrackLabel
from wire.geo import compass_course
from wire.messages import TrackStatus

router = APIRouter(prefix="/tracks", tags=["tracks"], responses=errors(*AUTH_ERRORS))
GlobalId = Annotated[int, Path(ge=0, le=MAX_ID)]


def current_tracks(ctx, bbox: BBox | None, classes, status) -> list[TrackOut]:
    """Current tracks with operators' labels applied; the class filter sees the labelled class."""
    labels = ctx.store.track_labels()
    tracks = [track_out(t, labels.get(t.global_id))
              for t in ctx.store.current_tracks(bbox=bbox, status=status)]  # fmt: skip
    return [t for t in tracks if t.target_class in classes] if classes else tracks


@router.get("", response_model=TrackList, summary="Current fused tracks")
def list_tracks(
    who: Viewer, ctx: Context, bbox: Annotated[BBox | None, Depends(bbox_param)],
    target_class: ClassesParam = None, status: TrackStatus | None = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID,
                                       description="the previous page's next_after")] = None,
    limit: PageParam = 1000,
) -> Response:  # fmt: skip
    check_page(limit, ctx.settings.api.max_page)
    labels = ctx.store.track_labels()
    table = ctx.store.current_track_table(bbox, status)
    if target_class:
        wanted = {str(c) for c in target_class}
        classes = labelled_classes(table, labels)
        table = table.take(np.flatnonzero([c in wanted for c in classes]))
    # Tracks come by global id, so the page starts right after `after`.
    start = 0 if after is None else int(np.searchsorted(table.global_id, after, side="right"))
    whole = start == 0 and limit >= len(table)
    page = table if whole else table.take(np.arange(start, min(start + limit, len(table))))
    more = len(page) == limit and start + limit < len(table)
    # Not returned as a TrackList: FastAPI would validate it again, which at 10,000 tracks
    # costs more than the query (tests check the bytes against the schema).
    return Response(track_list_json(page, labels, total=len(table),
                                    next_after=int(page.global_id[-1]) if more else None),
                    media_type="application/json")  # fmt: skip


@router.get("/{global_id}", response_model=TrackDetailOut, responses=errors(404),
            summary="One fused track and the node tracks it fuses")  # fmt: skip
def get_track(global_id: GlobalId, who: Viewer, ctx: Context) -> TrackDetailOut:
    track = ctx.store.fused_track(global_id)
    if track is None:
        raise HTTPException(404, f"no track {global_id}")
    sources = ctx.store.node_tracks_of(global_id)
    return track_detail_out(track, ctx.store.track_label(global_id), sources)


@router.patch("/{global_id}", response_model=TrackOut, responses=errors(404, *BODY_ERRORS),
              summary="Set a track's class or affiliation (operators; audited)")  # fmt: skip
def label_track(global_id: GlobalId, change: TrackLabelIn, who: OperatorJson,
                ctx: Context) -> TrackOut:  # fmt: skip
    # The store writes the label and its audit row in one transaction.
    label = ctx.store.label_track(global_id, change.affiliation and str(change.affiliation),
                                  change.target_class and str(change.target_class), who.name,
                                  time.time())  # fmt: skip
    track = ctx.store.fused_track(global_id)
    if label is None or track is None:
        raise HTTPException(404, f"no track {global_id}")
    ctx.feed.publish_label(label)
    return track_out(track, label)


# -- the track list as JSON ------------------------------------------------------------------


def track_list_json(tracks: FusedTracks, labels: Mapping[int, TrackLabel], total: int,
                    next_after: int | None) -> bytes:  # fmt: skip
    """TrackList's JSON for stored tracks (Store.current_track_table): byte for byte what
    its serialiser writes for the same tracks made into models by `track_out`.

    orjson writes floats as pydantic does (shortest round trip; null for NaN and the
    infinities) and keys in insertion order, so the fields below go in TrackOut's order.

    Each track is written as soon as it is made, so its dict, tuples and lists die young.
    Kept alive for the whole page, 10,000 tracks' hundred thousand containers would
    survive into the oldest GC generation and set off full collections of the process's
    heap: measured, up to three times the time of a 10,000-track page.
    """
    # The matrices as flat lists of floats (one list each, not one per track: see above).
    state, covariance = tracks.state.ravel().tolist(), tracks.covariance.ravel().tolist()
    columns = zip(tracks.global_id.tolist(), tracks.time.tolist(), tracks.lat.tolist(),
                  tracks.lon.tolist(), tracks.alt.tolist(), range(0, len(state), 4),
                  range(0, len(covariance), 16), tracks.target_class, tracks.status,
                  tracks.quality.tolist(), tracks.sources, strict=True)  # fmt: skip
    written = b",".join([orjson.dumps(_track_fields(row, state, covariance, labels.get(row[0])))
                         for row in columns])  # fmt: skip
    return orjson.dumps({"total": total, "tracks": orjson.Fragment(b"[" + written + b"]"),
                         "next_after": next_after})  # fmt: skip


def labelled_classes(tracks: FusedTracks, labels: Mapping[int, TrackLabel]) -> list[str]:
    """Each track's class as the list filters it: the operator's if set, else fusion's."""
    return [label.target_class if (label := labels.get(gid)) and label.target_class
            else str(cls)
            for gid, cls in zip(tracks.global_id.tolist(), tracks.target_class, strict=True)]


def _track_fields(row: tuple, state: list[float], covariance: list[float],
                  label: TrackLabel | None) -> dict[str, Any]:  # fmt: skip
    gid, t, lat, lon, alt, s, k, fused_class, status, quality, sources = row
    e, n, ve, vn = state[s:s + 4]
    c = covariance[k:k + 16]
    return {
        "global_id": gid, "time": t, "lat": lat, "lon": lon, "alt": alt,
        "position_enu": (e, n), "velocity_enu": (ve, vn), "speed": math.hypot(ve, vn),
        "course": compass_course(ve, vn),
        "position_covariance": ((c[0], c[1]), (c[4], c[5])),
        "velocity_covariance": ((c[10], c[11]), (c[14], c[15])),
        "target_class": label.target_class if label and label.target_class else fused_class,
        "fused_class": fused_class,
        "affiliation": Affiliation(label.affiliation) if label and label.affiliation
        else Affiliation.UNKNOWN,
        "status": status, "quality": quality, "sources": sources,
        # Few tracks carry a label: its own model writes it, validated as on the model path.
        "label": None if label is None else orjson.Fragment(label_out(label).model_dump_json()),
    }  # fmt: skip
