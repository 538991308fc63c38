"""Who is calling: bearer tokens checked against the token store, and a brake on guessing.

A client address that fails authentication `limit` times within `window_s`
gets 429 with Retry-After until its oldest failure leaves the window, even with
a good token: guessing tokens from one address costs it the whole window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from hq.api.tokens import Role, TokenRecord, TokenRejected, TokenStore


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    expires_at: float | None = None


class AuthError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


class FailureLimiter:
    """Authentication failures per client address in a sliding window."""

    def __init__(self, limit: int, window_s: float, max_clients: int = 100_000):
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float) -> int | None:
        """Seconds until `client` may try again, or None if it may now."""
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._forget_idle(now)
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _forget_idle(self, now: float) -> None:
        idle = [c for c, t in self._failures.items() if not t or t[-1] <= now - self.window_s]
        for client in idle:
            del self._failures[client]


def authenticate(authorization: str | None, client: str, tokens: TokenStore,
                 limiter: FailureLimiter, on_failure) -> Principal:  # fmt: skip
    """The caller of a request with this Authorization header, or AuthError (401 or 429).

    `on_failure(reason)` counts each failure (for metrics).
    """
    now = time.time()
    wait = limiter.retry_after(client, now)
    if wait is not None:
        on_failure("rate_limited")
        raise AuthError(429, "too many failed authentications from this address; "
                             f"retry after {wait} s", {"Retry-After": str(wait)})  # fmt: skip
    scheme, _, token = (authorization or "").partition(" ")
    try:
        if not authorization:
            raise TokenRejected("missing bearer token")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("the Authorization header must read 'Bearer <token>'")
        record: TokenRecord = tokens.verify(token.strip(), now)
    except TokenRejected as rejected:
        limiter.failed(client, now)
        reason = str(rejected)
        on_failure(reason.replace(" ", "_") if reason.startswith(("token", "unknown", "missing",
                                                                  "malformed")) else "bad_header")
        raise AuthError(401, reason, {"WWW-Authenticate": "Bearer"}) from None
    return Principal(record.name, record.role, record.expires_at)
