"""The enrollment site: /enroll (sign in, review, install or decline), /enroll/profile (the
Profile Service payload, once), /enroll/ota (the device's phase-2 and phase-3 POSTs)."""

from __future__ import annotations

from urllib.parse import parse_qs

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from starlette.routing import Route

from orchardist.accounts.lockout import LockedOutError
from orchardist.enroll.directory import (
    DirectoryError,
    DirectoryUnavailableError,
    InvalidCredentialsError,
)
from orchardist.enroll.flow import OtaEnrollment
from orchardist.enroll.ota import OtaError
from orchardist.web import enroll_pages as pages
from orchardist.web.bodies import read_limited_body
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.enroll")
PROFILE = "application/x-apple-aspen-config"
MAX_FORM_BYTES = 16 * 1024
MAX_ATTRIBUTES_BYTES = 256 * 1024


async def sign_in_page(request: Request) -> Response:
    """The sign-in form; with ?invite=TOKEN, an invitation's review page instead."""
    organization = _organization(request)
    invite = request.query_params.get("invite")
    if invite is None:
        return HTMLResponse(pages.sign_in(organization))
    try:
        invited = await _flow(request).invited(invite)
    except OtaError as exc:
        log.warning("enroll_invitation_refused", reason=str(exc))
        return HTMLResponse(pages.refused(organization, str(exc)), status_code=403)
    log.info("enroll_invitation_opened", user=invited.user.login)
    return HTMLResponse(pages.confirm(organization, invited.user.login, invite, invited.profiles))


async def sign_in(request: Request) -> Response:
    """The directory sign-in, behind the same throttle as the console's: failures count per
    name and per address, and a locked name or address is refused before the directory
    is asked."""
    form = await _form(request)
    user, password = form.get("user", "").strip(), form.get("password", "")
    organization = _organization(request)
    throttle = _services(request).accounts.throttle
    address = request.client.host if request.client else "unknown"
    try:
        await throttle.check(user, address)
        signed_in = await _flow(request).sign_in(user, password)
    except LockedOutError as exc:
        log.warning("enroll_sign_in_locked", user=user, address=address, until=exc.until)
        return HTMLResponse(pages.sign_in(organization, str(exc), user), status_code=429)
    except DirectoryUnavailableError as exc:
        log.error("enroll_directory_unavailable", error=str(exc))
        message = "The sign-in service is unavailable; try again later or ask IT."
        return HTMLResponse(pages.sign_in(organization, message, user), status_code=503)
    except (DirectoryError, OtaError) as exc:
        log.warning("enroll_sign_in_refused", user=user, reason=str(exc))
        status, message = 401, str(exc)
        if isinstance(exc, InvalidCredentialsError):
            try:
                await throttle.failed(user, address)
            except LockedOutError as locked:
                status, message = 429, str(locked)
        return HTMLResponse(pages.sign_in(organization, message, user), status_code=status)
    await throttle.succeeded(user)
    log.info("enroll_signed_in", user=signed_in.user.login, groups=list(signed_in.user.groups))
    name = signed_in.user.display_name or signed_in.user.login
    return HTMLResponse(pages.confirm(organization, name, signed_in.token, signed_in.profiles))


async def install(request: Request) -> Response:
    token = (await _form(request)).get("session", "")
    return HTMLResponse(pages.done(_organization(request), f"/enroll/profile?session={token}"))


async def decline(request: Request) -> Response:
    token = (await _form(request)).get("session", "")
    await _flow(request).decline(token)
    log.info("enroll_declined")
    return HTMLResponse(pages.declined(_organization(request)))


async def profile_service(request: Request) -> Response:
    token = request.query_params.get("session", "")
    try:
        body = await _flow(request).consent(token)
    except OtaError as exc:
        log.warning("enroll_profile_refused", reason=str(exc))
        return HTMLResponse(pages.refused(_organization(request), str(exc)), status_code=403)
    log.info("enroll_profile_service_sent")
    return Response(body, media_type=PROFILE)


async def device_post(request: Request) -> Response:
    body = await read_limited_body(request, MAX_ATTRIBUTES_BYTES)
    try:
        answer = await _flow(request).device_post(body)
    except OtaError as exc:
        log.warning("ota_refused", reason=str(exc))
        return Response(f"{exc}\n", status_code=403, media_type="text/plain")
    log.info("ota_answered")
    return Response(answer, media_type=PROFILE)


async def _form(request: Request) -> dict[str, str]:
    raw = await read_limited_body(request, MAX_FORM_BYTES)
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _flow(request: Request) -> OtaEnrollment:
    ota = _services(request).ota
    assert ota is not None
    return ota


def _organization(request: Request) -> str:
    return _services(request).settings.organization


routes = [
    Route("/enroll", sign_in_page, methods=["GET"]),
    Route("/enroll", sign_in, methods=["POST"]),
    Route("/enroll/install", install, methods=["POST"]),
    Route("/enroll/decline", decline, methods=["POST"]),
    Route("/enroll/profile", profile_service, methods=["GET"]),
    Route("/enroll/ota", device_post, methods=["POST"]),
]
