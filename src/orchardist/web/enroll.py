"""The enrollment site: /enroll (sign in, review, install or decline), /enroll/profile (the
Profile Service payload, once), /enroll/ota (the device's phase-2 and phase-3 POSTs)."""

from __future__ import annotations

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from starlette.routing import Route

from orchardist.enroll.flow import OtaEnrollment
from orchardist.enroll.ota import OtaError
from orchardist.web import enroll_pages as pages
from orchardist.web.bodies import read_form, read_limited_body
from orchardist.web.directory_sign_in import SignInRefused, sign_in_with_directory
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
    """The directory sign-in (see orchardist.web.directory_sign_in: the console's throttle
    and `[enroll]`'s rate limit, one answer per kind of refusal)."""
    form = await _form(request)
    user, password = form.get("user", "").strip(), form.get("password", "")
    organization = _organization(request)
    limit = _services(request).enroll_sign_in_limit
    signed_in = await sign_in_with_directory(
        request, user, password, _flow(request).sign_in, site="enroll", limit=limit
    )
    if isinstance(signed_in, SignInRefused):
        page = pages.sign_in(organization, signed_in.message, user)
        wait = signed_in.retry_after
        headers = {"Retry-After": str(wait)} if wait is not None else None
        return HTMLResponse(page, status_code=signed_in.status, headers=headers)
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
    return await read_form(request, MAX_FORM_BYTES)


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
