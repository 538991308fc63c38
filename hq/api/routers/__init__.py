"""One router per resource, all under /api/v1 (health and metrics at the root).

Shared here: the documented error responses and the query parameters that
several resources take (bounding box, classes, time windows).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query

from hq.api.models import ErrorOut
from hq.store.records import BBox
from wire.messages import TargetClass

MAX_PAGE = 10_000  # the most rows a request may ask for; [api] max_page may lower it
MAX_ID = 2**63 - 1  # SQLite's largest integer
TIME_MAX = 1e11  # UTC s, far beyond any real time; keeps windows finite

_REASONS = {
    400: "the request is inconsistent (see detail)",
    401: "no token, or a malformed, unknown, revoked or expired one",
    403: "the token's role may not do this",
    404: "no such resource",
    409: "the resource is not in a state that allows this",
    413: "the body is larger than the API accepts",
    415: "the body is not application/json",
    422: "a parameter or the body is invalid (see detail)",
    429: "too many failed authentications from this address (see Retry-After)",
}


def errors(*codes: int) -> dict:
    """OpenAPI documentation of these error responses: JSON shaped as ErrorOut, whatever the
    media type of the operation's success (GeoJSON, Prometheus text, an event stream)."""
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}}}
    return {code: {"description": _REASONS[code], "content": body} for code in codes}


AUTH_ERRORS = (401, 403, 422, 429)
BODY_ERRORS = (413, 415)


_NUMBER = r"-?[0-9]+(\.[0-9]+)?"


def bbox_param(
    bbox: Annotated[str | None, Query(
        max_length=200, pattern=rf"^{_NUMBER}(,{_NUMBER}){{3}}$",
        description="south,west,north,east in WGS84 degrees (south <= north, west <= east)",
        examples=["22.5,13.9,23.2,14.6"])] = None,
) -> BBox | None:  # fmt: skip
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        if len(parts) != 4:
            raise ValueError("bbox needs four numbers: south,west,north,east")
        numbers = [float(p) for p in parts]
        if not all(abs(x) <= 180 for x in numbers):  # also refuses nan and inf
            raise ValueError("bbox numbers are degrees: latitudes in [-90, 90], "
                             "longitudes in [-180, 180]")  # fmt: skip
        return BBox(*numbers)
    except ValueError as error:
        raise HTTPException(422, f"invalid bbox {bbox!r}: {error}") from None


ClassesParam = Annotated[list[TargetClass] | None, Query(
    alias="class", description="keep only these classes (repeat the parameter for several)")]
PageParam = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows per page")]
TimeParam = Annotated[float | None, Query(ge=0, le=TIME_MAX, allow_inf_nan=False,
                                          description="UTC s")]  # fmt: skip
IdParam = Annotated[int, Query(ge=0, le=MAX_ID)]


def check_page(limit: int, max_page: int) -> None:
    if limit > max_page:
        raise HTTPException(422, f"limit {limit} exceeds this server's page size {max_page}")
