"""``GET /metrics`` (Prometheus text format) and the HTTP request-latency middleware.

Ledger, queue and job metrics come from ``broadcaster.metrics`` (read at scrape time, so
they agree across processes). Request latency is measured here, per route template
(``/api/v1/incidents/{incident_id}``, never the raw path, so label values stay few).

Several web processes in one container (``broadcaster serve --workers N``): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory private to the container (compose mounts
a tmpfs) and every process's request latencies are summed in each scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcaster.metrics import BroadcasterCollector, read_snapshot
from status_page.http import runtime

HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"
# Anyone can send any method name; a label per name would be a new series each time.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class HttpMetrics:
    """The request-latency histogram of one app, and the route templates to label it with."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "broadcaster_http_request_duration_seconds",
            "Time to answer an HTTP request (to the first byte for event streams), by route.",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS_S,
            registry=None if multiprocess_dir() else self.registry,
        )
        self._templates: dict[tuple[int, frozenset[str]], str] | None = None
        self._static: set[str] = set()

    def route_template(self, scope: Scope) -> str:
        """The matched route's path template, from what the router left in ``scope``."""
        if self._templates is None:
            routes = getattr(scope.get("app"), "routes", [])
            self._templates = _templates(routes)
            self._static = {r.path for r in routes if isinstance(r, Route) and not r.param_convertors}
        endpoint = scope.get("endpoint")
        if endpoint is None:
            # Answered before routing (the public fast path) or by no route at all.
            path = scope.get("path", "")
            return path if path in self._static else UNMATCHED
        key = (id(endpoint), frozenset(scope.get("path_params", {})))
        return self._templates.get(key, UNMATCHED)

    def collectors(self) -> Iterable[Collector]:
        if multiprocess_dir():
            return [_MultiProcess()]
        return [self.registry, ProcessCollector(registry=None)]


def _templates(routes: Iterable[BaseRoute]) -> dict[tuple[int, frozenset[str]], str]:
    table: dict[tuple[int, frozenset[str]], str] = {}
    for route in routes:
        if isinstance(route, Route):
            table.setdefault((id(route.endpoint), frozenset(route.param_convertors)), route.path)
    return table


class _MultiProcess:
    """Every web process's samples, read from ``PROMETHEUS_MULTIPROC_DIR`` at collect time."""

    def collect(self) -> Any:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=multiprocess_dir())  # type: ignore[no-untyped-call]
        return registry.collect()


def http_metrics(app: Any) -> HttpMetrics:
    """The app's ``HttpMetrics`` (made on first use)."""
    metrics: HttpMetrics | None = getattr(app.state, "http_metrics", None)
    if metrics is None:
        metrics = HttpMetrics()
        app.state.http_metrics = metrics
    return metrics


def method_label(method: str) -> str:
    """The request method as a label: one of ``METHODS``, else ``other`` (a bounded set)."""
    return method if method in METHODS else OTHER_METHOD


class MetricsMiddleware:
    """Pure ASGI middleware observing each HTTP request's latency, labelled by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        done = False

        def observe() -> None:
            nonlocal done
            done = True
            metrics = http_metrics(scope["app"])
            metrics.latency.labels(metrics.route_template(scope), method_label(scope["method"]), str(status)).observe(
                time.perf_counter() - started
            )

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                streaming = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message.get("headers", [])
                )
                if streaming:
                    observe()  # a stream lasts as long as the reader stays: time its first byte
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not done:
                observe()

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not done:
                observe()


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus exposition: ledger, queue, jobs, this web tier's request latencies."""
    rt = runtime(request)
    snapshot = await read_snapshot(rt.engine, rt.queue)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BroadcasterCollector(snapshot, list(rt.registry.enabled)))
    for collector in http_metrics(request.app).collectors():
        registry.register(collector)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encoder(registry), media_type=None, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
    )


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
