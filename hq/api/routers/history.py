"""A track's history over a time window, decimated to at most `max_points`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from hq.api.deps import ApiContext, Context, Viewer
from hq.api.models import HistoryOut, history_point_out
from hq.api.routers import AUTH_ERRORS, MAX_ID, TimeParam, errors
from hq.store.interface import DAY
from hq.store.records import HistoryPoint

router = APIRouter(prefix="/tracks", tags=["history"], responses=errors(*AUTH_ERRORS))
MaxPoints = Annotated[int, Query(ge=2, le=10_000,
                                 description="decimate to at most this many points")]  # fmt: skip
DEFAULT_WINDOW_S = 3600.0


@router.get("/{global_id}/history", response_model=HistoryOut, responses=errors(404),
            summary="A track's positions over a window (default: the last hour)")  # fmt: skip
def track_history(global_id: Annotated[int, Path(ge=0, le=MAX_ID)], who: Viewer, ctx: Context,
                  t0: TimeParam = None, t1: TimeParam = None,
                  max_points: MaxPoints = 1000) -> HistoryOut:  # fmt: skip
    t0, t1, points = history(ctx, global_id, t0, t1, max_points)
    return HistoryOut(global_id=global_id, t0=t0, t1=t1, max_points=max_points,
                      points=[history_point_out(p) for p in points])  # fmt: skip


def history(ctx: ApiContext, global_id: int, t0: float | None, t1: float | None,
            max_points: int) -> tuple[float, float, list[HistoryPoint]]:  # fmt: skip
    """The window (defaults filled in, checked) and its points; 404 for a never-seen id."""
    t1 = time.time() if t1 is None else t1
    t0 = t1 - DEFAULT_WINDOW_S if t0 is None else t0
    longest = ctx.settings.history_days * DAY
    if not t0 < t1:
        raise HTTPException(422, f"the window must have t0 < t1 (got t0={t0}, t1={t1})")
    if t1 - t0 > longest:
        raise HTTPException(422, f"the window is longer than the {ctx.settings.history_days} "
                                 "days of history kept")  # fmt: skip
    if global_id > ctx.store.max_global_id():
        raise HTTPException(404, f"no track {global_id} has existed")
    return t0, t1, ctx.store.track_history(global_id, t0, t1, max_points)
