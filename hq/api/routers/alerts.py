"""Alerts: list and read them; operators acknowledge, assign and resolve them (each change
written by the store with its audit row in one transaction, and pushed to every live
stream)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from hq.api.deps import ApiContext, Context, Operator, OperatorJson, Viewer
from hq.api.models import AlertList, AlertOut, AlertStateOut, AssignIn, ResolveIn, alert_out
from hq.api.routers import AUTH_ERRORS, BODY_ERRORS, PageParam, TimeParam, check_page, errors

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=errors(*AUTH_ERRORS))
# Every id HQ makes now is URL-safe; `:path` still reaches ids stored before that held "/".
AlertId = Annotated[str, Path(min_length=1, max_length=320)]


@router.get("", response_model=AlertList, summary="Alerts, newest first")
def list_alerts(who: Viewer, ctx: Context,
                state: Annotated[AlertStateOut | None, Query()] = None,
                since: TimeParam = None, limit: PageParam = 100) -> AlertList:  # fmt: skip
    check_page(limit, ctx.settings.api.max_page)
    return AlertList(alerts=alerts(ctx, state, since, limit))


def alerts(ctx: ApiContext, state: str | None, since: float | None,
           limit: int) -> list[AlertOut]:  # fmt: skip
    return [alert_out(r) for r in ctx.store.alerts(state=state, since=since, limit=limit)]


@router.get("/{alert_id:path}", response_model=AlertOut, responses=errors(404), summary="One alert")
def get_alert(alert_id: AlertId, who: Viewer, ctx: Context) -> AlertOut:
    return _alert(ctx, alert_id)


@router.post("/{alert_id:path}/acknowledge", response_model=AlertOut, responses=errors(404, 409),
             summary="Acknowledge an open alert (operators; audited)")  # fmt: skip
def acknowledge(alert_id: AlertId, who: Operator, ctx: Context) -> AlertOut:
    current = _alert(ctx, alert_id)
    # The store writes the audit row in the same transaction as the change.
    if current.state != "open" or not ctx.store.acknowledge_alert(alert_id, who.name,
                                                                  time.time()):  # fmt: skip
        raise HTTPException(409, f"alert {alert_id} is {current.state}, not open")
    return _changed(ctx, alert_id)


@router.post("/{alert_id:path}/assign", response_model=AlertOut,
             responses=errors(404, 409, *BODY_ERRORS),
             summary="Give an alert to someone, acknowledging it if open (operators; audited)")
def assign(alert_id: AlertId, body: AssignIn, who: OperatorJson, ctx: Context) -> AlertOut:
    _alert(ctx, alert_id)
    if not ctx.store.assign_alert(alert_id, body.assignee, who.name, time.time()):
        raise HTTPException(409, f"alert {alert_id} is resolved")
    return _changed(ctx, alert_id)


@router.post("/{alert_id:path}/resolve", response_model=AlertOut,
             responses=errors(404, 409, *BODY_ERRORS),
             summary="Resolve an alert, acknowledging it first if open (operators; audited)")
def resolve(alert_id: AlertId, body: ResolveIn, who: OperatorJson, ctx: Context) -> AlertOut:
    current = _alert(ctx, alert_id)
    if not ctx.store.resolve_alert(alert_id, body.note, who.name, time.time()):
        raise HTTPException(409, f"alert {alert_id} was resolved by {current.resolved_by}")
    return _changed(ctx, alert_id)


def _alert(ctx: ApiContext, alert_id: str) -> AlertOut:
    found = ctx.store.alerts_by_id([alert_id], limit=1)
    if not found:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return alert_out(found[0])


def _changed(ctx: ApiContext, alert_id: str) -> AlertOut:
    alert = _alert(ctx, alert_id)
    ctx.feed.publish_alert(alert)
    return alert
