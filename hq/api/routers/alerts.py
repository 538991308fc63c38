"""Alerts: list and read them; operators acknowledge and resolve them (audited, with who
and when, and pushed to every live stream)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from hq.api.annotations import Resolution
from hq.api.deps import ApiContext, Context, Operator, OperatorJson, Viewer
from hq.api.models import AlertList, AlertOut, AlertStateOut, ResolveIn, alert_out
from hq.api.routers import AUTH_ERRORS, BODY_ERRORS, PageParam, TimeParam, check_page, errors

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=errors(*AUTH_ERRORS))
AlertId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("", response_model=AlertList, summary="Alerts, newest first")
def list_alerts(who: Viewer, ctx: Context,
                state: Annotated[AlertStateOut | None, Query()] = None,
                since: TimeParam = None, limit: PageParam = 100) -> AlertList:  # fmt: skip
    check_page(limit, ctx.settings.api.max_page)
    return AlertList(alerts=alerts(ctx, state, since, limit))


def alerts(ctx: ApiContext, state: str | None, since: float | None,
           limit: int) -> list[AlertOut]:  # fmt: skip
    """Alerts with their state, where "resolved" (kept by the API) overrides the store's."""
    resolved = ctx.annotations.resolved_ids()
    if state == "resolved":
        records = ctx.store.alerts_by_id(sorted(resolved), since=since, limit=limit)
    else:
        # Resolved alerts are still "open" or "acknowledged" in the store: where they are
        # filtered out, ask for enough more.
        extra = len(resolved) if state is not None else 0
        records = ctx.store.alerts(state=state, since=since, limit=limit + extra)
        if state is not None:
            records = [r for r in records if r.alert.alert_id not in resolved][:limit]
        records = records[:limit]
    resolutions = ctx.annotations.resolutions([r.alert.alert_id for r in records])
    return [alert_out(r, resolutions.get(r.alert.alert_id)) for r in records]


@router.get("/{alert_id}", response_model=AlertOut, responses=errors(404), summary="One alert")
def get_alert(alert_id: AlertId, who: Viewer, ctx: Context) -> AlertOut:
    return _alert(ctx, alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, responses=errors(404, 409),
             summary="Acknowledge an open alert (operators; audited)")  # fmt: skip
def acknowledge(alert_id: AlertId, who: Operator, ctx: Context) -> AlertOut:
    current = _alert(ctx, alert_id)
    # The store writes the audit row in the same transaction as the change.
    if current.state != "open" or not ctx.store.acknowledge_alert(alert_id, who.name,
                                                                  time.time()):  # fmt: skip
        raise HTTPException(409, f"alert {alert_id} is {current.state}, not open")
    return _changed(ctx, alert_id)


@router.post("/{alert_id}/resolve", response_model=AlertOut,
             responses=errors(404, 409, *BODY_ERRORS),
             summary="Resolve an alert, acknowledging it first if open (operators; audited)")
def resolve(alert_id: AlertId, body: ResolveIn, who: OperatorJson, ctx: Context) -> AlertOut:
    current = _alert(ctx, alert_id)
    if current.state == "resolved":
        raise HTTPException(409, f"alert {alert_id} was resolved by {current.resolved_by}")
    now = time.time()
    if current.state == "open":
        ctx.store.acknowledge_alert(alert_id, who.name, now)
    if not ctx.annotations.resolve(Resolution(alert_id, who.name, now, body.note)):
        raise HTTPException(409, f"alert {alert_id} was resolved meanwhile")
    ctx.store.append_audit(who.name, "alert.resolve", {"alert_id": alert_id, "note": body.note},
                           now)  # fmt: skip
    return _changed(ctx, alert_id)


def _alert(ctx: ApiContext, alert_id: str) -> AlertOut:
    found = ctx.store.alerts_by_id([alert_id], limit=1)
    if not found:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return alert_out(found[0], ctx.annotations.resolutions([alert_id]).get(alert_id))


def _changed(ctx: ApiContext, alert_id: str) -> AlertOut:
    alert = _alert(ctx, alert_id)
    ctx.feed.publish_alert(alert)
    return alert
