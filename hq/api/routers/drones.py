"""Our own drones: where each is now, what its cameras cover, and its past positions.

A drone is named by its post and its MAVLink system id (`site/node/system_id`): each
post numbers its own drones, so two posts may each fly a drone 1.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from hq.api.deps import Context, Viewer
from hq.api.models import DroneHistoryOut, DroneList, drone_out
from hq.api.routers import AUTH_ERRORS, TimeParam, errors
from hq.store.interface import DAY
from hq.store.records import node_key

router = APIRouter(prefix="/drones", tags=["drones"], responses=errors(*AUTH_ERRORS))
NamePart = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
SystemId = Annotated[int, Path(ge=1, le=255, description="the drone's MAVLink system id")]
MaxPoints = Annotated[int, Query(ge=2, le=10_000,
                                 description="decimate to at most this many points")]  # fmt: skip
DEFAULT_WINDOW_S = 3600.0


@router.get("", response_model=DroneList,
            summary="Every drone of every post, as it last reported itself")  # fmt: skip
def list_drones(who: Viewer, ctx: Context) -> DroneList:
    return DroneList(drones=[drone_out(t) for t in ctx.store.drones()])


@router.get("/{site}/{node}/{system_id}/history", response_model=DroneHistoryOut,
            responses=errors(404),
            summary="A drone's telemetry over a window (default: the last hour)")  # fmt: skip
def drone_history(site: NamePart, node: NamePart, system_id: SystemId, who: Viewer,
                  ctx: Context, t0: TimeParam = None, t1: TimeParam = None,
                  max_points: MaxPoints = 1000) -> DroneHistoryOut:  # fmt: skip
    t1 = time.time() if t1 is None else t1
    t0 = t1 - DEFAULT_WINDOW_S if t0 is None else t0
    if not t0 < t1:
        raise HTTPException(422, f"the window must have t0 < t1 (got t0={t0}, t1={t1})")
    if t1 - t0 > ctx.settings.history_days * DAY:
        raise HTTPException(422, f"the window is longer than the {ctx.settings.history_days} "
                                 "days of history kept")  # fmt: skip
    key = node_key(site, node)
    if not any((d.site, d.node, d.sysid) == (site, node, system_id) for d in ctx.store.drones()):
        raise HTTPException(404, f"no drone {system_id} has reported from {key}")
    points = ctx.store.drone_history(key, system_id, t0, t1, max_points)
    return DroneHistoryOut(drone_id=f"{key}/{system_id}", t0=t0, t1=t1, max_points=max_points,
                           points=[drone_out(p) for p in points])  # fmt: skip
