"""The audit log (admins only): operators' actions, exports and the store's own, hash-chained."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hq.api.deps import Admin, Context
from hq.api.models import AuditList, audit_out
from hq.api.routers import AUTH_ERRORS, MAX_ID, PageParam, check_page, errors

router = APIRouter(prefix="/audit", tags=["audit"], responses=errors(*AUTH_ERRORS))


@router.get("", response_model=AuditList, summary="Audit rows after a sequence number")
def audit_log(who: Admin, ctx: Context,
              after_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
              limit: PageParam = 100) -> AuditList:  # fmt: skip
    check_page(limit, ctx.settings.api.max_page)
    entries = ctx.store.audit_log(after_seq=after_seq, limit=limit)
    return AuditList(entries=[audit_out(e) for e in entries],
                     next_after=entries[-1].seq if len(entries) == limit else None)
