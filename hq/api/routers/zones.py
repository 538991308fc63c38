"""Zones and the border line: everyone reads them; admins create and change them (audited).

Kept in the Store, seeded from configs/hq.toml on the first start; each change is
written with its audit row in one transaction. A change shows on the operators' maps
at once and reaches the alert detectors at once too: ingest reads the border, zones
and places again from the store, before its next batch, whenever the audit log grew
(hq/alerts/geography.py). No restart.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from hq.api.deps import AdminJson, Context, Viewer
from hq.api.models import AreaOut, BorderIn, ZoneCreate, ZoneIn, ZoneList, area_out
from hq.api.routers import AUTH_ERRORS, BODY_ERRORS, errors

router = APIRouter(tags=["zones"], responses=errors(*AUTH_ERRORS))
ZoneName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("/zones", response_model=ZoneList, summary="Every zone")
def list_zones(who: Viewer, ctx: Context) -> ZoneList:
    return ZoneList(zones=[area_out(z) for z in ctx.store.zones()])


@router.get("/zones/{name}", response_model=AreaOut, responses=errors(404), summary="One zone")
def get_zone(name: ZoneName, who: Viewer, ctx: Context) -> AreaOut:
    zone = ctx.store.zone(name)
    if zone is None:
        raise HTTPException(404, f"no zone {name!r}")
    return area_out(zone)


@router.post("/zones", response_model=AreaOut, status_code=201,
             responses=errors(409, *BODY_ERRORS), summary="Create a zone (admins; audited)")
def create_zone(zone: ZoneCreate, who: AdminJson, ctx: Context) -> AreaOut:
    now = time.time()
    points = [(p.lat, p.lon) for p in zone.points]
    area = ctx.store.put_zone(zone.name, points, who.name, now, create=True)
    if area is None:
        raise HTTPException(409, f"a zone or line named {zone.name!r} exists")
    return area_out(area)


@router.put("/zones/{name}", response_model=AreaOut, responses=errors(404, *BODY_ERRORS),
            summary="Replace a zone's polygon (admins; audited)")  # fmt: skip
def update_zone(name: ZoneName, zone: ZoneIn, who: AdminJson, ctx: Context) -> AreaOut:
    now = time.time()
    points = [(p.lat, p.lon) for p in zone.points]
    area = ctx.store.put_zone(name, points, who.name, now, create=False)
    if area is None:
        raise HTTPException(404, f"no zone {name!r}")
    return area_out(area)


@router.get("/border", response_model=AreaOut, responses=errors(404), summary="The border line")
def get_border(who: Viewer, ctx: Context) -> AreaOut:
    border = ctx.store.border()
    if border is None:
        raise HTTPException(404, "no border line is configured")
    return area_out(border)


@router.put("/border", response_model=AreaOut, responses=errors(*BODY_ERRORS),
            summary="Replace the border line (admins; audited)")  # fmt: skip
def update_border(border: BorderIn, who: AdminJson, ctx: Context) -> AreaOut:
    now = time.time()
    points = [(p.lat, p.lon) for p in border.points]
    return area_out(ctx.store.put_border(points, who.name, now))

