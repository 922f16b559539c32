"""`/mdm/checkin` and `/mdm/connect`: the device side of MDM over HTTP.

Each request: read the body (size-limited), establish the device identity (Mdm-Signature,
or a proxy's client-certificate header when configured), parse, hand to the MdmService.
A check-in PUT to /mdm/connect is handled as a check-in, for servers configured with one URL.

These two are answered straight from ASGI by `MdmLane`, in front of the framework: every
device polls them, and routing, middleware and the framework's request objects cost more
than an Idle's own work. The lane keeps the framework's promises itself — a 4xx with a
reason for bad input, a 500 logged with its traceback, the request counted for /metrics —
and writes one log line per request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import Response
from starlette.datastructures import State
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from orchardist import bulk_threads
from orchardist.mdm.checkin import CheckinError, parse_checkin
from orchardist.mdm.identity import DeviceIdentity, IdentityError, forwarded_certificate
from orchardist.mdm.reports import OFF_LOOP_BYTES, ReportError
from orchardist.mdm.service import MdmAnswer
from orchardist.metrics import HTTP_REQUESTS, MDM_REQUEST_SECONDS
from orchardist.storage import ChallengeOutcome
from orchardist.web.bodies import BodyRefusedError, read_asgi_body
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.mdm")
CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
PATHS = frozenset({"/mdm/checkin", "/mdm/connect"})


class _RefusedError(Exception):
    def __init__(self, status: int, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.status, self.reason, self.fields = status, reason, fields


class MdmLane:
    """PUT /mdm/checkin and /mdm/connect; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        headers = _headers(scope)
        fields: dict[str, Any] = {}
        try:
            answer = await self._answer(path, headers, receive, fields)
        except _RefusedError as refused:
            answer = MdmAnswer(refused.status, reason=refused.reason)
            fields.update(refused.fields)
        except Exception:
            log.exception("mdm_failed", path=path, **fields)
            answer = MdmAnswer(500, reason="the server failed to answer; see its log")
        await _send(send, answer)
        seconds = time.perf_counter() - started
        HTTP_REQUESTS.labels("PUT", path, str(answer.status)).inc()
        MDM_REQUEST_SECONDS.labels(path).observe(seconds)
        _log(path, answer, round(seconds * 1000, 2), fields)

    async def _answer(
        self, path: str, headers: dict[str, str], receive: Receive, fields: dict[str, Any]
    ) -> MdmAnswer:
        services: Services = self.state.services
        mdm = services.mdm
        if mdm is None:
            raise _RefusedError(503, "MDM is not configured on this server")
        limit = services.settings.mdm_max_body_bytes
        try:
            body = await read_asgi_body(headers.get("content-length"), receive, limit)
        except BodyRefusedError as refused:
            raise _RefusedError(refused.status, refused.reason) from refused
        if len(body) >= OFF_LOOP_BYTES:  # hashing a large report: not on the event loop
            identity = await bulk_threads.run(_identity, services, headers, body)
        else:
            identity = _identity(services, headers, body)
        try:
            if path == "/mdm/checkin" or _is_checkin(headers, body):
                message = parse_checkin(body)
                fields.update(message_type=message.message_type, device_id=message.device_id)
                return await mdm.checkin(message, identity)
            report = await services.reports.read(body)  # a large one by a worker process
        except (CheckinError, ReportError) as exc:
            raise _RefusedError(400, str(exc)) from exc
        fields.update(status=report.status, device_id=report.device_id)
        if report.command_uuid is not None:
            fields["reported"] = report.command_uuid
        return await mdm.connect(report, identity)


def _headers(scope: Scope) -> dict[str, str]:
    # Names are lower case in ASGI; the last of a repeated header wins (none repeat here).
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _is_checkin(headers: dict[str, str], body: bytes) -> bool:
    """A check-in sent to the ServerURL: by its content type, or, for clients that omit it, by
    a MessageType key in a body without Status. Every report has a top-level Status, so a
    query result that merely contains a "MessageType" key somewhere stays a report.

    Only a body under OFF_LOOP_BYTES is searched: looking through a megabyte app list held
    the event loop for about a millisecond a report, and a check-in is a few kilobytes (a
    larger one without the content type is read as a report, and refused as one)."""
    if headers.get("content-type", "").startswith(CHECKIN_TYPE):
        return True
    if len(body) >= OFF_LOOP_BYTES:
        return False
    return b"<key>MessageType</key>" in body and b"<key>Status</key>" not in body


def _identity(services: Services, headers: dict[str, str], body: bytes) -> DeviceIdentity:
    now = datetime.now(UTC)
    header = services.settings.mdm_client_cert_header
    try:
        if header and headers.get(header.lower()):
            trusted = [services.ca.certificate]
            certificate = forwarded_certificate(headers[header.lower()], trusted, now)
            return DeviceIdentity.of(certificate)
        signature = headers.get("mdm-signature")
        if signature:
            return services.signatures.signer(signature, body, now)
        raise IdentityError("no Mdm-Signature header and no client certificate")
    except IdentityError as exc:
        # 403, not 401: a device takes 401 as an order to unenroll.
        raise _RefusedError(403, str(exc), identity_refused=True) from exc


async def _send(send: Send, answer: MdmAnswer) -> None:
    if answer.reason is not None:
        body, content_type = f"{answer.reason}\n".encode(), b"text/plain; charset=utf-8"
    else:
        body, content_type = answer.body, answer.content_type.encode("latin-1")
    headers = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", content_type),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log(path: str, answer: MdmAnswer, ms: float, fields: dict[str, Any]) -> None:
    if answer.command_uuid is not None:
        fields["sent"] = answer.command_uuid
    if answer.certificate_device is not None:
        fields["certificate_device"] = answer.certificate_device
    if answer.status >= 400:
        event = "mdm_identity_refused" if fields.pop("identity_refused", False) else "mdm_refused"
        log.warning(event, path=path, http_status=answer.status, reason=answer.reason, ms=ms,
                    **fields)  # fmt: skip
    else:
        log.info("mdm_exchange", path=path, http_status=answer.status, ms=ms, **fields)


def _refused(status: int, reason: str, request: Request) -> Response:
    log.warning("mdm_refused", status=status, reason=reason, path=request.url.path)
    return Response(f"{reason}\n", status_code=status, media_type="text/plain")


async def enroll(request: Request) -> Response:
    """GET /mdm/enroll?token=…: a one-time link's enrollment profile, for Safari to install."""
    services: Services = request.app.state.services
    if services.enrollment is None:
        return _refused(503, "enrollment is not configured on this server", request)
    token = request.query_params.get("token", "")
    outcome = await services.enrollment.redeem(token) if token else ChallengeOutcome.UNKNOWN
    if outcome != ChallengeOutcome.CONSUMED:
        reasons = {
            ChallengeOutcome.UNKNOWN: "this enrollment link is not valid",
            ChallengeOutcome.ALREADY_USED: "this enrollment link was used already",
            ChallengeOutcome.EXPIRED: "this enrollment link has expired",
        }
        log.warning("enroll_link_refused", reason=outcome.value)
        return _refused(403, f"{reasons[outcome]}: ask IT for a new one", request)
    profile = await services.enrollment.profile(signed=True)
    log.info("enroll_link_used")
    return Response(
        profile,
        media_type="application/x-apple-aspen-config",
        headers={"Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
    )


async def _answered_by_the_lane(request: Request) -> Response:
    """Never reached while `MdmLane` is installed; the routes exist so that other methods
    get a 405 and /metrics knows the templates."""
    return _refused(500, "the MDM lane is not installed", request)


routes = [
    Route("/mdm/checkin", _answered_by_the_lane, methods=["PUT"]),
    Route("/mdm/connect", _answered_by_the_lane, methods=["PUT"]),
    Route("/mdm/enroll", enroll, methods=["GET"]),
]
