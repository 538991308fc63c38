"""Flow statistics: border crossings counted per hour, segment, direction and class."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hq.api.deps import Context, Viewer
from hq.api.models import FlowOut, FlowRowOut
from hq.api.routers import AUTH_ERRORS, TimeParam, errors

router = APIRouter(prefix="/flow", tags=["flow"], responses=errors(*AUTH_ERRORS))


@router.get("", response_model=FlowOut,
            summary="Crossing counts per hour (since HQ started; counts only, no tracks)")
def flow(who: Viewer, ctx: Context, since: TimeParam = None, until: TimeParam = None) -> FlowOut:
    if since is not None and until is not None and since >= until:
        raise HTTPException(422, "since must be before until")
    if ctx.flow is None:  # this API runs without ingest in its process
        return FlowOut(rows=[])
    rows = ctx.flow.table(float("-inf") if since is None else since,
                          float("inf") if until is None else until)  # fmt: skip
    return FlowOut(rows=[FlowRowOut(target_class=r["class"], **{k: v for k, v in r.items()
                                                                 if k != "class"})
                         for r in rows])  # fmt: skip
