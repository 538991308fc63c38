"""Edge nodes (posts): liveness, uplink health, and their drones' links, batteries, positions."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from hq.api.deps import Context, Viewer
from hq.api.models import NodeList, NodeOut, node_out
from hq.api.routers import AUTH_ERRORS, errors
from hq.store.records import node_key

router = APIRouter(prefix="/nodes", tags=["nodes"], responses=errors(*AUTH_ERRORS))
NamePart = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("", response_model=NodeList, summary="Every node HQ has heard of")
def list_nodes(who: Viewer, ctx: Context) -> NodeList:
    now, silence = time.time(), ctx.settings.alerts.node_silence_s
    return NodeList(nodes=[node_out(r, now, silence) for r in ctx.store.nodes()])


@router.get("/{site}/{node}", response_model=NodeOut, responses=errors(404),
            summary="One node")  # fmt: skip
def get_node(site: NamePart, node: NamePart, who: Viewer, ctx: Context) -> NodeOut:
    key = node_key(site, node)
    for record in ctx.store.nodes():
        if record.node_key == key:
            return node_out(record, time.time(), ctx.settings.alerts.node_silence_s)
    raise HTTPException(404, f"no node {key}")
