"""Who the caller is: lets a client show its user's name and hide what the role may not do."""

from __future__ import annotations

from fastapi import APIRouter

from hq.api.deps import Viewer
from hq.api.models import MeOut
from hq.api.routers import AUTH_ERRORS, errors

router = APIRouter(tags=["session"], responses=errors(*AUTH_ERRORS))


@router.get("/me", response_model=MeOut, summary="The caller's name, role and token expiry")
def me(who: Viewer) -> MeOut:
    return MeOut(name=who.name, role=who.role, expires_at=who.expires_at)
