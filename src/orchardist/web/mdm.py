"""`/mdm/checkin` and `/mdm/connect`: the device side of MDM over HTTP.

Each request: read the body (size-limited), establish the device identity (Mdm-Signature,
or a proxy's client-certificate header when configured), parse, hand to the MdmService.
A check-in PUT to /mdm/connect is handled as a check-in, for servers configured with one URL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from cryptography import x509
from fastapi import HTTPException, Request, Response
from starlette.routing import Route

from orchardist.mdm.checkin import CheckinError, parse_checkin
from orchardist.mdm.identity import IdentityError, forwarded_certificate, signer_of
from orchardist.mdm.reports import ReportError, parse_report
from orchardist.mdm.service import MdmAnswer, MdmService
from orchardist.storage import ChallengeOutcome
from orchardist.web.bodies import read_limited_body
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.mdm")
CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"


async def checkin(request: Request) -> Response:
    services, mdm = _services(request)
    body = await read_limited_body(request, services.settings.mdm_max_body_bytes)
    return await _checkin(request, services, mdm, body)


async def connect(request: Request) -> Response:
    services, mdm = _services(request)
    body = await read_limited_body(request, services.settings.mdm_max_body_bytes)
    if _is_checkin(request, body):
        return await _checkin(request, services, mdm, body)
    identity = _identity(request, services, body)
    try:
        report = parse_report(body)
    except ReportError as exc:
        return _refused(400, str(exc), request)
    answer = await mdm.connect(report, identity)
    _log(request, answer, status=report.status, device_id=report.device_id,
         reported=report.command_uuid)  # fmt: skip
    return _response(answer)


async def _checkin(request: Request, services: Services, mdm: MdmService, body: bytes) -> Response:
    identity = _identity(request, services, body)
    try:
        message = parse_checkin(body)
    except CheckinError as exc:
        return _refused(400, str(exc), request)
    answer = await mdm.checkin(message, identity)
    _log(request, answer, message_type=message.message_type, device_id=message.device_id)
    return _response(answer)


def _is_checkin(request: Request, body: bytes) -> bool:
    """A check-in sent to the ServerURL: by its content type, or, for clients that omit it, by
    a MessageType key in a body without Status. Every report has a top-level Status, so a
    query result that merely contains a "MessageType" key somewhere stays a report."""
    if request.headers.get("content-type", "").startswith(CHECKIN_TYPE):
        return True
    return b"<key>MessageType</key>" in body and b"<key>Status</key>" not in body


def _services(request: Request) -> tuple[Services, MdmService]:
    services: Services = request.app.state.services
    if services.mdm is None:
        raise HTTPException(503, "MDM is not configured on this server")
    return services, services.mdm


def _identity(request: Request, services: Services, body: bytes) -> x509.Certificate:
    trusted = [services.ca.certificate]
    now = datetime.now(UTC)
    header = services.settings.mdm_client_cert_header
    try:
        if header and request.headers.get(header):
            return forwarded_certificate(request.headers[header], trusted, now)
        signature = request.headers.get("mdm-signature")
        if signature:
            return signer_of(signature, body, trusted, now)
        raise IdentityError("no Mdm-Signature header and no client certificate")
    except IdentityError as exc:
        log.warning("mdm_identity_refused", reason=str(exc), path=request.url.path)
        # 403, not 401: a device takes 401 as an order to unenroll.
        raise HTTPException(403, str(exc)) from exc


def _refused(status: int, reason: str, request: Request) -> Response:
    log.warning("mdm_refused", status=status, reason=reason, path=request.url.path)
    return Response(f"{reason}\n", status_code=status, media_type="text/plain")


def _response(answer: MdmAnswer) -> Response:
    if answer.reason is not None:
        return Response(f"{answer.reason}\n", status_code=answer.status, media_type="text/plain")
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


def _log(request: Request, answer: MdmAnswer, **fields: object) -> None:
    event = "mdm_refused" if answer.status >= 400 else "mdm_exchange"
    level = log.warning if answer.status >= 400 else log.info
    if answer.certificate_device is not None:
        fields["certificate_device"] = answer.certificate_device
    level(event, path=request.url.path, http_status=answer.status, reason=answer.reason,
          sent=answer.command_uuid, **fields)  # fmt: skip


routes = [
    Route("/mdm/checkin", checkin, methods=["PUT"]),
    Route("/mdm/connect", connect, methods=["PUT"]),
]


async def enroll(request: Request) -> Response:
    """GET /mdm/enroll?token=…: a one-time link's enrollment profile, for Safari to install."""
    services: Services = request.app.state.services
    if services.enrollment is None:
        raise HTTPException(503, "enrollment is not configured on this server")
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


routes.append(Route("/mdm/enroll", enroll, methods=["GET"]))
