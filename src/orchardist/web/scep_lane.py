"""`ScepLane`: SCEP PKIOperation (RFC 8894 §4.3) answered straight from ASGI.

Every enrolling device sends one, and the framework's middleware, routing and request
objects cost about as much CPU as a certificate's own non-RSA work; `MdmLane` does the
same for check-ins. The lane keeps the framework's promises itself: a 4xx with a reason
for a body that is not SCEP, a 500 logged with its traceback, the request counted for
/metrics under its route template, one log line per request. GetCACaps, GetCACert and
anything else go on to the framework (web/scep.py).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from orchardist.metrics import HTTP_REQUESTS
from orchardist.scep.messages import ScepMessageError
from orchardist.scep.service import ScepReply, ScepService
from orchardist.web.bodies import BodyRefusedError, read_asgi_body
from orchardist.web.scep import PKI_MESSAGE, MessageRefusedError, message_from_query, reply_fields

log = structlog.get_logger("orchardist.scep")
PATHS = frozenset({"/scep", "/scep/pkiclient.exe"})
_POST_QUERY = b"operation=PKIOperation"  # what nearly every client sends
_PKI_MESSAGE = PKI_MESSAGE.encode("latin-1")
_TEXT = b"text/plain; charset=utf-8"


class ScepLane:
    """GET and POST /scep?operation=PKIOperation; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        query: bytes = scope["query_string"]
        if method == "POST" and query == _POST_QUERY:
            params: dict[str, str] = {}
        elif method in ("GET", "POST"):
            params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            if params.get("operation") != "PKIOperation":
                await self.app(scope, receive, send)
                return
        else:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            status, body, fields = await self._answer(scope, params, receive)
        except Exception:
            log.exception("scep_failed", path=scope["path"])
            status, body, fields = 500, b"the server failed to answer; see its log\n", None
        await _send(send, status, body)
        HTTP_REQUESTS.labels(method, scope["path"], str(status)).inc()
        if fields is not None:
            _log(fields, round((time.perf_counter() - started) * 1000, 2))

    async def _answer(
        self, scope: Scope, params: dict[str, str], receive: Receive
    ) -> tuple[int, bytes, dict[str, Any] | None]:
        service: ScepService = self.state.services.scep
        limit: int = self.state.services.settings.scep_max_body_bytes
        try:
            if scope["method"] == "POST":
                declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
                length = None if declared is None else declared.decode("latin-1")
                try:
                    der = await read_asgi_body(length, receive, limit)
                except BodyRefusedError as refused:
                    raise MessageRefusedError(refused.status, refused.reason) from refused
            else:
                der = message_from_query(params.get("message", ""), limit)
        except MessageRefusedError as refused:
            fields = {
                "event": "scep_refused",
                "reason": refused.reason,
                "http_status": refused.status,
            }
            return refused.status, f"{refused.reason}\n".encode(), fields
        try:
            reply = await service.pki_operation(der)
        except ScepMessageError as exc:
            fields = {"event": "scep_refused", "reason": str(exc), "size": len(der)}
            return 400, f"not a SCEP pkiMessage: {exc}\n".encode(), fields
        return 200, reply.body, _reply_log(reply)


def _reply_log(reply: ScepReply) -> dict[str, Any]:
    fields = reply_fields(reply)
    fields["event"] = "scep_failure" if reply.fail_info is not None else "scep_reply"
    return fields


async def _send(send: Send, status: int, body: bytes) -> None:
    content_type = _PKI_MESSAGE if status == 200 else _TEXT
    headers = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", content_type),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log(fields: dict[str, Any], ms: float) -> None:
    event = fields.pop("event")
    if event == "scep_reply":
        log.info(event, ms=ms, **fields)
    else:
        log.warning(event, ms=ms, **fields)
