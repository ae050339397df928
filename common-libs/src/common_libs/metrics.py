"""HTTP metrics: a pure ASGI middleware recording request counts and latencies by route."""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MetricsMiddleware"]

_UNMATCHED = "<unmatched>"
_histograms: WeakKeyDictionary[CollectorRegistry, Histogram] = WeakKeyDictionary()


def _duration_histogram(registry: CollectorRegistry) -> Histogram:
    """One histogram per registry, shared by every app in the process (tests build several)."""
    histogram = _histograms.get(registry)
    if histogram is None:
        histogram = Histogram(
            "http_request_duration_seconds",
            "Time spent handling HTTP requests.",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        _histograms[registry] = histogram
    return histogram


class MetricsMiddleware:
    """Observe ``http_request_duration_seconds{method,route,status}`` for every HTTP request.

    The route label is the matched path template (``/orders/{order_id}``), never the raw path,
    so that ids cannot blow up the number of time series.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry = REGISTRY) -> None:
        self.app = app
        self.duration = _duration_histogram(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _UNMATCHED
            self.duration.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
