"""Fused tracks: the current picture (filtered and paged), one track with its sources, and
an operator's change of a track's class or affiliation (audited).

The list is written straight from the stored rows to JSON (`track_list_json`), not
through a TrackOut per track: at 10,000 tracks, making the models cost more than the
query itself. Its bytes are those of TrackList's own serialiser, which the tests check.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from hq.api.annotations import TrackLabel
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
from hq.store.interface import load_json
from hq.store.records import BBox
from wire.geo import compass_course
from wire.messages import TargetClass, TrackStatus

router = APIRouter(prefix="/tracks", tags=["tracks"], responses=errors(*AUTH_ERRORS))
GlobalId = Annotated[int, Path(ge=0, le=MAX_ID)]


def current_tracks(ctx, bbox: BBox | None, classes, status) -> list[TrackOut]:
    """Current tracks with operators' labels applied; the class filter sees the labelled class."""
    labels = ctx.annotations.labels()
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
    labels = ctx.annotations.labels()
    rows = ctx.store.current_track_rows(bbox, status)
    if target_class:
        wanted = {str(c) for c in target_class}
        rows = [row for row in rows if labelled_class(row, labels) in wanted]
    # Rows come by global id, so the page starts right after `after`.
    start = 0 if after is None else bisect_right(rows, after, key=itemgetter(0))
    page = rows[start:start + limit]
    more = len(page) == limit and page[-1][0] != rows[-1][0]
    # Not returned as a TrackList: FastAPI would validate it again, which at 10,000 tracks
    # costs more than the query (tests check the bytes against the schema).
    return Response(track_list_json(page, labels, total=len(rows),
                                    next_after=page[-1][0] if more else None),
                    media_type="application/json")  # fmt: skip


@router.get("/{global_id}", response_model=TrackDetailOut, responses=errors(404),
            summary="One fused track and the node tracks it fuses")  # fmt: skip
def get_track(global_id: GlobalId, who: Viewer, ctx: Context) -> TrackDetailOut:
    track = ctx.store.fused_track(global_id)
    if track is None:
        raise HTTPException(404, f"no track {global_id}")
    sources = ctx.store.node_tracks_of(global_id)
    return track_detail_out(track, ctx.annotations.label(global_id), sources)


@router.patch("/{global_id}", response_model=TrackOut, responses=errors(404, *BODY_ERRORS),
              summary="Set a track's class or affiliation (operators; audited)")  # fmt: skip
def label_track(global_id: GlobalId, change: TrackLabelIn, who: OperatorJson,
                ctx: Context) -> TrackOut:  # fmt: skip
    track = ctx.store.fused_track(global_id)
    if track is None:
        raise HTTPException(404, f"no track {global_id}")
    before = ctx.annotations.label(global_id)
    now = time.time()
    label = TrackLabel(
        global_id,
        affiliation=change.affiliation or (before.affiliation if before else None),
        target_class=change.target_class or (before.target_class if before else None),
        updated_by=who.name, updated_at=now,
    )  # fmt: skip
    ctx.annotations.set_label(label)
    ctx.store.append_audit(who.name, "track.label", {
        "global_id": global_id, "affiliation": label.affiliation,
        "target_class": label.target_class, "fused_class": str(track.target_class),
        "previous": None if before is None else {"affiliation": before.affiliation,
                                                 "target_class": before.target_class},
    }, now)  # fmt: skip
    ctx.feed.publish_label(label)
    return track_out(track, label)


# -- the track list as JSON ------------------------------------------------------------------


def track_list_json(rows: Sequence[tuple], labels: Mapping[int, TrackLabel], total: int,
                    next_after: int | None) -> bytes:  # fmt: skip
    """TrackList's JSON for stored rows (Store.current_track_rows): byte for byte what
    its serialiser writes for the same tracks made into models by `track_out`.

    orjson writes floats as pydantic does (shortest round trip; null for NaN and the
    infinities) and keys in insertion order, so the fields below go in TrackOut's order.

    Each track is written as soon as it is made, so its dict, tuples and lists die young.
    Kept alive for the whole page, 10,000 tracks' hundred thousand containers would
    survive into the oldest GC generation and set off full collections of the process's
    heap: measured, up to three times the time of a 10,000-track page.
    """
    tracks = b",".join([orjson.dumps(_track_fields(row, labels.get(row[0]))) for row in rows])
    return orjson.dumps({"total": total, "tracks": orjson.Fragment(b"[" + tracks + b"]"),
                         "next_after": next_after})  # fmt: skip


def labelled_class(row: tuple, labels: Mapping[int, TrackLabel]) -> str:
    """A stored row's class as the list filters it: the operator's if set, else fusion's."""
    label = labels.get(row[0])
    return label.target_class if label and label.target_class else row[10]


def _track_fields(row: tuple, label: TrackLabel | None) -> dict[str, Any]:
    gid, t, lat, lon, alt, e, n, ve, vn, cov, cls, status, quality, sources = row
    c = load_json(cov)  # 4x4 row-major over [e, n, ve, vn]
    fused_class = _CLASSES[cls]
    return {
        "global_id": gid, "time": t, "lat": lat, "lon": lon, "alt": alt,
        "position_enu": (e, n), "velocity_enu": (ve, vn), "speed": math.hypot(ve, vn),
        "course": compass_course(ve, vn),
        "position_covariance": ((c[0], c[1]), (c[4], c[5])),
        "velocity_covariance": ((c[10], c[11]), (c[14], c[15])),
        "target_class": TargetClass(label.target_class) if label and label.target_class
        else fused_class,
        "fused_class": fused_class,
        "affiliation": Affiliation(label.affiliation) if label and label.affiliation
        else Affiliation.UNKNOWN,
        "status": _STATUSES[status], "quality": quality, "sources": load_json(sources),
        # Few tracks carry a label: its own model writes it, validated as on the model path.
        "label": None if label is None else orjson.Fragment(label_out(label).model_dump_json()),
    }  # fmt: skip


# Enum members by value: as strict as TargetClass(value) (an unknown value is refused) and
# ten times cheaper, which shows at 10,000 rows a request.
_CLASSES = {c.value: c for c in TargetClass}
_STATUSES = {s.value: s for s in TrackStatus}
