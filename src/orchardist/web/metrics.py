"""`/metrics`: Prometheus text exposition, optionally behind a bearer token.

Request counts are labelled with the route template (`/api/v1/devices/{udid}`), never the
raw path: a UDID or a scanner's made-up URL would each start a new series. The queue depth,
push backlog and connection pool are read at scrape time, so they are right in every
worker process without any process having to keep them up to date.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import structlog
from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from orchardist.metrics import HTTP_REQUESTS, MDM_REQUEST_SECONDS, registry_with
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.web")
TIMED_ROUTES = frozenset({"/mdm/checkin", "/mdm/connect"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: 404s for whatever path was asked, all in one series


def route_template(scope: Scope, asked: Scope) -> str:
    """The template of the route that answered `asked` (the scope as it came in; routing
    rewrites some of its keys). FastAPI's routes name themselves in the scope; plain
    Starlette routes (/mdm, /scep, /enroll, /metrics) and mounts are found by matching."""
    route = scope.get("route") or _plain_route(scope.get("app"), asked)
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _plain_route(app: object, asked: Scope) -> BaseRoute | None:
    partial = None
    for route in getattr(app, "routes", ()):
        if isinstance(route, Route | Mount):
            match, _ = route.matches(asked)
            if match is Match.FULL:
                return route
            if match is Match.PARTIAL and partial is None:
                partial = route  # the path, another method: answered 405
    return partial


def record_request(scope: Scope, asked: Scope, status: int, started: float) -> None:
    """Count one answered request; time it too when it is a device's."""
    route = route_template(scope, asked)
    method = scope["method"] if scope["method"] in METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    if route in TIMED_ROUTES:
        MDM_REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.settings.metrics_token
    if token is not None and not _authorized(request, token.get_secret_value()):
        log.warning("metrics_unauthorized", client=(request.client or ("-",))[0])
        return Response(
            "a metrics token is required: Authorization: Bearer <metrics_token>\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scraped = _Scraped(await _gauges(services))
    return Response(generate_latest(registry_with(scraped)), media_type=CONTENT_TYPE_LATEST)


def _authorized(request: Request, expected: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant time, so the token cannot be guessed a character at a time.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.encode())


async def _gauges(services: Services) -> list[Metric]:
    storage, now = services.storage, datetime.now(UTC)
    depth = GaugeMetricFamily(
        "orchardist_command_queue_depth",
        "Command targets waiting for their device, unexpired, by status",
        labels=["status"],
    )
    for status, count in sorted((await storage.queue_depth(now)).items()):
        depth.add_metric([status], count)
    pool = storage.pool_usage()
    return [
        depth,
        GaugeMetricFamily(
            "orchardist_push_backlog",
            "Devices whose push is due now",
            value=await storage.push_backlog(now),
        ),
        GaugeMetricFamily(
            "orchardist_db_pool_checked_out",
            "Database connections in use by this process",
            value=pool.checked_out,
        ),
        GaugeMetricFamily(
            "orchardist_db_pool_size",
            "Database connections this process's pool keeps",
            value=pool.size,
        ),
    ]


class _Scraped:
    """Metrics computed for one scrape, as a collector."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


routes = [Route("/metrics", metrics, methods=["GET"])]
