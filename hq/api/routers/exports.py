"""GeoJSON (RFC 7946) exports of current tracks, a track's history and alerts.

An export takes data out of HQ, so it is an operator's action and is written
to the audit log with who, what and how much.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from hq.api import geojson
from hq.api.deps import ApiContext, Context, Operator
from hq.api.models import AlertStateOut, drone_out
from hq.api.routers import (
    AUTH_ERRORS,
    MAX_ID,
    ClassesParam,
    PageParam,
    TimeParam,
    bbox_param,
    check_page,
    errors,
)
from hq.api.routers.alerts import alerts
from hq.api.routers.history import history
from hq.api.routers.tracks import current_tracks
from hq.store.records import BBox
from wire.messages import TrackStatus

router = APIRouter(prefix="/exports", tags=["exports"], responses=errors(*AUTH_ERRORS))


class GeoJSONResponse(JSONResponse):
    media_type = geojson.MEDIA_TYPE


@router.get("/tracks.geojson", response_model=geojson.TrackCollection,
            response_class=GeoJSONResponse, summary="Current tracks as GeoJSON (audited)")
def export_tracks(who: Operator, ctx: Context,
                  bbox: Annotated[BBox | None, Depends(bbox_param)],
                  target_class: ClassesParam = None,
                  status: TrackStatus | None = None) -> geojson.TrackCollection:  # fmt: skip
    tracks = current_tracks(ctx, bbox, target_class, status)
    _audit(ctx, who.name, "export.tracks", {"bbox": None if bbox is None else list(vars(bbox)
           .values()), "class": target_class, "status": status, "features": len(tracks)})
    return geojson.tracks_geojson(tracks)


@router.get("/tracks/{global_id}/history.geojson", response_model=geojson.HistoryCollection,
            response_class=GeoJSONResponse, responses=errors(404),
            summary="A track's history as a GeoJSON LineString (audited)")  # fmt: skip
def export_history(global_id: Annotated[int, Path(ge=0, le=MAX_ID)], who: Operator,
                   ctx: Context, t0: TimeParam = None, t1: TimeParam = None,
                   max_points: Annotated[int, Query(ge=2, le=10_000)] = 1000,
                   ) -> geojson.HistoryCollection:  # fmt: skip
    t0, t1, points = history(ctx, global_id, t0, t1, max_points)
    _audit(ctx, who.name, "export.history", {"global_id": global_id, "t0": t0, "t1": t1,
                                             "points": len(points)})  # fmt: skip
    return geojson.history_geojson(global_id, points)


@router.get("/alerts.geojson", response_model=geojson.AlertCollection,
            response_class=GeoJSONResponse, summary="Alerts as GeoJSON (audited)")
def export_alerts(who: Operator, ctx: Context,
                  state: Annotated[AlertStateOut | None, Query()] = None,
                  since: TimeParam = None, limit: PageParam = 1000,
                  ) -> geojson.AlertCollection:  # fmt: skip
    check_page(limit, ctx.settings.api.max_page)
    found = alerts(ctx, state, since, limit)
    _audit(ctx, who.name, "export.alerts", {"state": state, "since": since,
                                            "features": len(found)})  # fmt: skip
    return geojson.alerts_geojson(found)


@router.get("/drones.geojson", response_model=geojson.DroneCollection,
            response_class=GeoJSONResponse,
            summary="Our drones and their cameras' footprints as GeoJSON (audited)")  # fmt: skip
def export_drones(who: Operator, ctx: Context) -> geojson.DroneCollection:
    drones = [drone_out(t) for t in ctx.store.drones()]
    _audit(ctx, who.name, "export.drones", {"features": len(drones)})
    return geojson.drones_geojson(drones)


def _audit(ctx: ApiContext, who: str, action: str, details: dict) -> None:
    ctx.store.append_audit(who, action, {k: (None if v is None else
                                             [str(c) for c in v] if isinstance(v, list) else v)
                                         for k, v in details.items()}, time.time())  # fmt: skip
