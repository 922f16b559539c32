"""`/scep`: the SCEP CA over HTTP (RFC 8894 §4), CGI-style `?operation=` dispatch.

Plain Starlette routes, not FastAPI endpoints: SCEP has no JSON to validate and no place
in the OpenAPI document, so FastAPI's parameter machinery would have nothing to do."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import structlog
from fastapi import HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.routing import Route

from orchardist.scep.messages import ScepMessageError
from orchardist.scep.service import ScepReply, ScepService
from orchardist.web.bodies import read_limited_body

log = structlog.get_logger("orchardist.scep")

PKI_MESSAGE = "application/x-pki-message"


def _service(request: Request) -> ScepService:
    service: ScepService = request.app.state.services.scep
    return service


async def scep(request: Request) -> Response:
    service = _service(request)
    operation = request.query_params.get("operation", "")
    if operation == "GetCACaps":
        return PlainTextResponse(service.capabilities())
    if operation == "GetCACert":
        body, content_type = service.ca_certificates()
        return Response(body, media_type=content_type)
    if operation == "PKIOperation":
        return await _pki_operation(request, service)
    log.warning("scep_bad_operation", operation=operation[:64])
    raise HTTPException(
        400, f"unknown operation {operation[:64]!r}: use GetCACaps, GetCACert or PKIOperation"
    )


async def _pki_operation(request: Request, service: ScepService) -> Response:
    """Reached only without `ScepLane` (web/scep_lane.py), which answers PKIOperation first."""
    limit: int = request.app.state.services.settings.scep_max_body_bytes
    if request.method == "POST":
        der = await read_limited_body(request, limit)
    else:
        try:
            der = message_from_query(request.query_params.get("message", ""), limit)
        except MessageRefusedError as refused:
            raise HTTPException(refused.status, refused.reason) from refused
    try:
        reply = await service.pki_operation(der)
    except ScepMessageError as exc:
        log.warning("scep_refused", reason=str(exc), size=len(der))
        raise HTTPException(400, f"not a SCEP pkiMessage: {exc}") from exc
    _log_reply(reply)
    return Response(reply.body, media_type=PKI_MESSAGE)


class MessageRefusedError(Exception):
    """A request refused before SCEP reads it: its HTTP status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def message_from_query(raw: str, limit: int) -> bytes:
    """The pkiMessage of a GET's `message` parameter (form-decoded), or MessageRefusedError."""
    # Base64 grows by 4/3; refuse before decoding.
    if len(raw) > limit * 4 // 3 + 4:
        raise MessageRefusedError(413, f"message over the {limit}-byte limit")
    # Clients are told to URL-encode the base64, but some do not: a bare '+' then arrives
    # as a space after form decoding. RFC 8894 §4.3 also allows the URL-safe alphabet.
    text = raw.replace(" ", "+").replace("-", "+").replace("_", "/").strip()
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MessageRefusedError(400, "the message parameter is not base64") from exc


def reply_fields(reply: ScepReply) -> dict[str, Any]:
    """What a CertRep's log line says: scep_failure with these when fail_info is in them."""
    fields: dict[str, Any] = {
        "transaction_id": reply.transaction_id,
        "message_type": reply.message_type,
        "status": reply.status.name,
    }
    if reply.fail_info is not None:
        fields.update(fail_info=reply.fail_info.name, reason=reply.reason)
    else:
        fields.update(serial=_hex(reply.certificate_serial), cipher=reply.cipher)
    return fields


def _log_reply(reply: ScepReply) -> None:
    fields = reply_fields(reply)
    if reply.fail_info is not None:
        log.warning("scep_failure", **fields)
    else:
        log.info("scep_reply", **fields)


def _hex(serial: int | None) -> str | None:
    return None if serial is None else f"{serial:x}"


routes = [Route(path, scep, methods=["GET", "POST"]) for path in ("/scep", "/scep/pkiclient.exe")]
