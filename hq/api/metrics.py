"""Prometheus metrics of the API, in a registry of its own (one per app, no global state).

Requests are counted by handler (the endpoint's name), never by raw path, so
a client probing random URLs cannot blow up the number of series. The live stream's
and ingest's counters are read when scraped, from the objects that keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq.api.live import LiveFeed

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self, feed: LiveFeed, ingest_counters: Callable[[], Mapping[str, int]] | None):
        self.registry = CollectorRegistry()
        self.requests = Counter("dunewatch_api_requests", "HTTP requests answered",
                                ["method", "handler", "status"], registry=self.registry)
        self.auth_failures = Counter("dunewatch_api_auth_failures",
                                     "requests refused for their credentials", ["reason"],
                                     registry=self.registry)  # fmt: skip
        self.registry.register(_LiveCollector(feed, ingest_counters))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(self, feed: LiveFeed, ingest_counters):
        self.feed, self.ingest_counters = feed, ingest_counters

    def collect(self):
        yield GaugeMetricFamily("dunewatch_api_sse_clients", "connected live-stream clients",
                                value=self.feed.clients)  # fmt: skip
        c = self.feed.counters
        for name, value, text in [
            ("sse_events", c.events, "delta events made by the live feed"),
            ("sse_frames_sent", c.frames_sent, "events, snapshots written to stream clients"),
            ("sse_resyncs", c.resyncs, "stream clients resynced after falling behind"),
            ("sse_drops", c.drops, "stream clients dropped for falling behind"),
            ("live_batches", c.published_batches, "committed batches the live feed received"),
        ]:  # fmt: skip
            yield CounterMetricFamily(f"dunewatch_api_{name}", text, value=value)
        counters = self.ingest_counters() if self.ingest_counters else {}
        for name, value in counters.items():
            yield CounterMetricFamily(f"dunewatch_hq_ingest_{name}", f"HQ ingest: {name}",
                                      value=value)  # fmt: skip


class RequestCounter:
    """Pure ASGI middleware (it must not buffer the live stream's response)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(scope["method"], getattr(route, "name", "unmatched"),
                                         str(status)).inc()  # fmt: skip
