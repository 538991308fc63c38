"""The API application: `create_app(store, settings, live_feed)` wires routers, auth, limits,
CORS, metrics and the live feed's life cycle. Everything lives on the app (app.state),
so two apps in one process (as in tests) share nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from hq.api import models
from hq.api.auth import AuthError, FailureLimiter, authenticate
from hq.api.deps import ApiContext, auth_failure_counter, required_role
from hq.api.docs import add_docs
from hq.api.live import LiveFeed
from hq.api.metrics import ApiMetrics, RequestCounter
from hq.api.middleware import BodyLimit, SecurityHeaders
from hq.api.routers import (
    alerts,
    audit,
    drones,
    exports,
    flow,
    health,
    history,
    nodes,
    session,
    stream,
    tracks,
    zones,
)
from hq.api.tokens import TokenStore
from hq.config import HqConfig
from hq.flow import FlowStatistics
from hq.store.interface import Store

STATIC = Path(__file__).with_name("static")
# The page's browser-side packages (package.json, installed by `make setup` with npm ci): each
# served under /vendor/NAME from its package folder, only the files the page loads.
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR = {"ol": "dist", "world-atlas": "", "milsymbol": "dist", "mgrs": "dist",
          "geographiclib-geodesic": ""}
API_PREFIX = "/api/v1"


def create_app(store: Store, settings: HqConfig, live_feed: LiveFeed, *,
               flow_statistics: FlowStatistics | None = None,
               ingest_counters: Callable[[], Mapping[str, int]] | None = None,
               ingest_stalled: Callable[[], bool] | None = None,
               ) -> FastAPI:  # fmt: skip
    """The API over `store`: tokens, zones, labels and the alert workflow are in it too.

    `flow_statistics`, `ingest_counters` and `ingest_stalled` (the watchdog's verdict, which
    /readyz reports) come from ingest when it runs in this process.
    """
    api = settings.api
    settings.seed_geography(store, time.time())
    context = ApiContext(
        store=store, settings=settings, feed=live_feed, tokens=TokenStore(store),
        limiter=FailureLimiter(api.auth_failures, api.auth_failure_window_s),
        metrics=ApiMetrics(live_feed, ingest_counters), flow=flow_statistics,
        ingest_stalled=ingest_stalled,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tracks_now = await run_in_threadpool(store.current_tracks)
        labels = await run_in_threadpool(store.track_labels)
        open_alerts = await run_in_threadpool(alerts.alerts, context, None, None, 1000)
        resolved = await run_in_threadpool(store.alert_ids, "resolved")
        drones_now = await run_in_threadpool(store.drones)
        live_feed.seed(tracks_now, labels, open_alerts, resolved, drones_now)
        ticking = asyncio.create_task(live_feed.run(), name="live-feed")
        try:
            yield
        finally:
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)

    app = FastAPI(title="dunewatch HQ API", version="1", lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
                  description="Fused tracks, alerts, nodes, zones and exports of dunewatch HQ. "
                              "Every endpoint but /healthz and /readyz needs a bearer token.")
    app.state.context = context
    for module in (tracks, history, nodes, drones, alerts, zones, flow, audit, exports, stream,
                   session):  # fmt: skip
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    if api.docs:
        add_docs(app, API_PREFIX, f"{API_PREFIX}/openapi.json")
    app.add_exception_handler(RequestValidationError, _validation_error)
    if api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=api.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "PATCH"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
    app.add_middleware(BodyLimit, max_body_bytes=api.max_body_bytes)
    app.add_middleware(RequestCounter, metrics=context.metrics)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    _document_extra_models(app)
    for package, folder in VENDOR.items():
        directory = NODE_MODULES / package / folder
        if directory.is_dir():
            app.mount(f"/vendor/{package}/{folder}".rstrip("/"), StaticFiles(directory=directory),
                      name=f"vendor-{package}")  # fmt: skip
    if STATIC.is_dir():  # the operators' page; mounted last so the API's routes come first
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with a readable detail; but 401/429 first when the caller is not authenticated,
    and 403 when the route needs a role the caller has not.

    FastAPI rejects malformed JSON before any dependency runs: without these checks a
    caller would learn how a body is validated before showing a token with the right role.
    """
    ctx: ApiContext = request.app.state.context
    if not request.url.path.startswith(("/healthz", "/readyz")):
        client = request.client.host if request.client else "unknown"
        try:
            who = await run_in_threadpool(authenticate, request.headers.get("authorization"),
                                          client, ctx.tokens, ctx.limiter,
                                          auth_failure_counter(ctx))  # fmt: skip
        except AuthError as auth:
            body = models.ErrorOut(detail=auth.detail)
            return JSONResponse(body.model_dump(), auth.status, headers=auth.headers)
        route = request.scope.get("route")
        role = required_role(route.dependant) if hasattr(route, "dependant") else None
        if role is not None and not who.role.allows(role):
            detail = f"this needs the {role} role; the token has {who.role}"
            return JSONResponse(models.ErrorOut(detail=detail).model_dump(), 403)
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                for e in error.errors()]  # fmt: skip
    detail = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
    return JSONResponse(models.ErrorOut(detail=detail or "invalid request",
                                        errors=problems).model_dump(), 422)  # fmt: skip


def _document_extra_models(app: FastAPI) -> None:
    """Add to the OpenAPI components the models FastAPI cannot find by itself: the live
    stream's event data (SSE has no JSON body) and the errors (hq/api/routers.errors)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            extra = (models.SnapshotData, models.DeltaData, models.HeartbeatData, models.ErrorOut)
            _, defs = models_json_schema([(m, "serialization") for m in extra],
                                         ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
