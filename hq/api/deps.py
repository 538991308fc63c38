"""What a request handler gets injected: the app's context (store and friends) and its caller.

`Viewer`, `Operator` and `Admin` are parameter types: a handler that takes an
`Operator` runs only for an operator's or an admin's token. Handlers that take
a JSON body use `OperatorJson`/`AdminJson`, which also refuse another content
type with 415 (after authentication, so an anonymous caller learns nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPBearer

from hq.api.auth import AuthError, FailureLimiter, Principal, authenticate
from hq.api.live import LiveFeed
from hq.api.metrics import ApiMetrics
from hq.api.tokens import Role, TokenStore
from hq.config import HqConfig
from hq.flow import FlowStatistics
from hq.store.interface import Store

# Declares the scheme in the OpenAPI schema; the header itself is read by `caller`,
# which gives clearer reasons than HTTPBearer's own errors.
bearer_scheme = HTTPBearer(auto_error=False, description="an API token: python -m hq token create")


@dataclass(frozen=True)
class ApiContext:
    store: Store
    settings: HqConfig
    feed: LiveFeed
    tokens: TokenStore
    limiter: FailureLimiter
    metrics: ApiMetrics
    flow: FlowStatistics | None
    ingest_stalled: Callable[[], bool] | None = None  # the ingest watchdog, when ingest runs here


def context(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(context)]


def caller(request: Request, ctx: Context) -> Principal:
    """The authenticated caller, or 401/429 (auth failures are counted per address)."""
    client = request.client.host if request.client else "unknown"
    try:
        return authenticate(request.headers.get("authorization"), client, ctx.tokens,
                            ctx.limiter, auth_failure_counter(ctx))  # fmt: skip
    except AuthError as error:
        raise HTTPException(error.status, error.detail, error.headers) from None


def auth_failure_counter(ctx: ApiContext):
    return lambda reason: ctx.metrics.auth_failures.labels(reason=reason).inc()


def require(role: Role, json_body: bool = False):
    def dependency(request: Request, who: Annotated[Principal, Depends(caller)],
                   _: Annotated[object, Security(bearer_scheme)] = None) -> Principal:  # fmt: skip
        if not who.role.allows(role):
            raise HTTPException(403, f"this needs the {role} role; the token has {who.role}")
        if json_body and not _is_json(request.headers.get("content-type", "")):
            raise HTTPException(415, "send the body as application/json")
        return who

    dependency.required_role = role  # read where a body fails before dependencies run
    return dependency


def required_role(dependant) -> Role | None:
    """The role a route's dependencies require (the highest if several), or None."""
    roles = [r for d in dependant.dependencies
             if (r := getattr(d.call, "required_role", None) or required_role(d)) is not None]
    return max(roles, key=list(Role).index, default=None)  # Role lists lowest first


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
OperatorJson = Annotated[Principal, Depends(require(Role.OPERATOR, json_body=True))]
AdminJson = Annotated[Principal, Depends(require(Role.ADMIN, json_body=True))]
