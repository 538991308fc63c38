"""Liveness and readiness (no token: probes have none) and Prometheus metrics (a token)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from hq.api.deps import Context, Viewer
from hq.api.metrics import CONTENT_TYPE
from hq.api.models import HealthOut, ReadyOut
from hq.api.routers import AUTH_ERRORS, errors

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", response_model=HealthOut, summary="The process answers")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut,
            responses={503: {"model": ReadyOut, "description": "a dependency is not usable"}},
            summary="The store and the token database answer; the live feed runs; no "
                    "message waits too long for its commit")
def readyz(ctx: Context) -> JSONResponse:
    checks = {"store": _works(ctx.store.max_global_id), "tokens": _works(ctx.tokens.tokens),
              "live_feed": ctx.feed.running}  # fmt: skip
    if ctx.ingest_stalled is not None:
        checks["ingest"] = not ctx.ingest_stalled()
    ready = all(checks.values())
    body = ReadyOut(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"description": "Prometheus text format", "content": {CONTENT_TYPE: {}}},
    **errors(*AUTH_ERRORS)}, summary="Prometheus metrics (any token)")  # fmt: skip
def metrics(who: Viewer, ctx: Context) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


def _works(probe) -> bool:
    try:
        probe()
        return True
    except Exception:  # any failure means not ready
        log.exception("readiness probe failed probe=%s", getattr(probe, "__qualname__", probe))
        return False
