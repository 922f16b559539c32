"""One structured log line per request, without query strings (a SCEP GET carries the whole
pkiMessage there) and without bodies; and the request counted for `/metrics`."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchardist.web.metrics import record_request

log = structlog.get_logger("orchardist.http")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked = dict(scope)  # routing adds to the scope; metrics match what came in
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record_request(scope, asked, status, started)
            log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("-",))[0],
            )
