"""The live stream: Server-Sent Events of the fused picture (hq/api/live.py makes them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse

from hq.api.deps import Context, Viewer
from hq.api.live import LiveFeed, StreamFilter, Subscription
from hq.api.routers import AUTH_ERRORS, ClassesParam, bbox_param, errors
from hq.store.records import BBox

router = APIRouter(tags=["stream"], responses=errors(*AUTH_ERRORS))
RETRY_MS = 3000  # how long a browser waits before reconnecting

DESCRIPTION = """\
`text/event-stream`. Every event has an `id:`; after a reconnect the browser
sends it back as `Last-Event-ID` and the stream resumes after it, or starts
with a fresh snapshot when it is too old. Events (`data:` is one JSON object):

- `snapshot`: `SnapshotData`, first, and again whenever the client fell behind;
- `delta`: `DeltaData`, what changed in one tick, each track at most once;
- `heartbeat`: `HeartbeatData`, when nothing else was sent for a while.

The filters apply to tracks: one that leaves the box or class is `ended`
for this stream. Alerts are never filtered.
"""


@router.get("/stream", response_class=StreamingResponse, summary="Live picture (SSE)",
            description=DESCRIPTION, responses={200: {
                "description": "an endless event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream(who: Viewer, ctx: Context, bbox: Annotated[BBox | None, Depends(bbox_param)],
                 target_class: ClassesParam = None,
                 last_event_id: Annotated[str | None, Header(max_length=64)] = None,
                 ) -> StreamingResponse:  # fmt: skip
    classes = frozenset(target_class) if target_class else None
    sub, first = ctx.feed.subscribe(StreamFilter(bbox, classes), last_event_id)
    return StreamingResponse(_frames(ctx.feed, sub, first), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache",
                                      "X-Accel-Buffering": "no"})  # fmt: skip


async def _frames(feed: LiveFeed, sub: Subscription, first: list[bytes]) -> AsyncIterator[bytes]:
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        for frame in first:
            yield frame
        async for frame in feed.frames(sub):
            yield frame
    finally:
        feed.unsubscribe(sub)
