"""The request body limit: a JSON 413 for an announced oversized body before anything reads
it, and for a body without Content-Length as soon as it grows past the limit."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        announced = Headers(scope=scope).get("content-length")
        if announced is not None and (not announced.isdigit()
                                      or int(announced) > self.max_body_bytes):  # fmt: skip
            response = JSONResponse({"detail": self._too_large}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # Raised inside the app's read of the body: its exception handler answers.
                raise HTTPException(413, self._too_large)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def _too_large(self) -> str:
        return f"the body exceeds {self.max_body_bytes} bytes"


class SecurityHeaders:
    """Headers every response carries, API and page alike: the browser may load scripts, styles
    and connections from HQ only (no inline script: the page has none), never frame HQ's
    page in another site, never sniff a type, and send no referrer."""

    HEADERS = (
        (b"content-security-policy",
         b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
         b"form-action 'self'; frame-ancestors 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    )  # fmt: skip

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in self.HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
