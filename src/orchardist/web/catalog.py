"""The app catalog at /apps: a user signs in with the directory, as at /enroll (the same
throttle, sessions of the same kind: orchardist.apps.catalog), and sees the apps their
directory groups are offered, each with an Install link — itms-services://, which works
on any iPhone or iPad, enrolled or not.

- GET /apps: the catalog when the session cookie names a live session, else sign-in.
- POST /apps: sign in; on success a new session (any the browser held is ended) and a
  303 back to GET /apps, so a reload never posts the password again.
- POST /apps/sign-out: ends the session (the form carries a token derived from it).
- POST /apps/install: on an enrolled phone, a managed install (InstallApplication through
  the app library) instead of the itms-services link — offered when the user has exactly
  one device enrolled under their login, since the catalog cannot tell which phone it is
  open on; the app stays assigned to that device and is kept up to date.
- GET /apps/catalog.css, /apps/catalog-icon.png: the pages' style and home-screen icon.

The pages carry a Content-Security-Policy like the console's (this site's styles and
images only, no script at all, no framing) and are never cached. The session cookie is
HttpOnly, SameSite=Lax, limited to /apps, Secure over HTTPS, and lives as long as the
session: a Web Clip opened again later is still signed in.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from orchardist.apps.catalog import (
    CatalogSessions,
    CatalogUser,
    entitled,
    form_token,
    form_token_matches,
)
from orchardist.apps.urls import AppUrls, app_icon
from orchardist.audit import Actor as AuditActor
from orchardist.audit import Outcome
from orchardist.storage import Enrollment
from orchardist.storage.listing import DeviceFilters
from orchardist.web import catalog_pages as pages
from orchardist.web.bodies import read_form
from orchardist.web.directory_sign_in import SignInRefused, sign_in_with_directory
from orchardist.wiring import Services, utc_now

log = structlog.get_logger("orchardist.catalog")
COOKIE = "orchardist_catalog"
HOME = "/apps"
MAX_FORM_BYTES = 16 * 1024
MAX_LOGIN_LENGTH = 256
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NO_DEVICE = (
    "A managed install needs exactly one device enrolled under your name: use the "
    "Install link instead."
)
UNVERIFIED = "This form did not come from the catalog's page, so nothing was changed."
ICON = resources.files("orchardist.apps").joinpath("data/catalog-icon.png")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _sessions(request: Request) -> CatalogSessions:
    """The catalog's sessions over the enrollment site's directory and session records."""
    services = _services(request)
    directory = services.ota.directory if services.ota is not None else None
    return CatalogSessions(directory, services.storage, utc_now)


def _html(body: str, status: int = 200, retry_after: int | None = None) -> HTMLResponse:
    headers = (
        PAGE_HEADERS if retry_after is None else {**PAGE_HEADERS, "Retry-After": str(retry_after)}
    )
    return HTMLResponse(body, status_code=status, headers=headers)


def _names(request: Request) -> tuple[str, str]:
    settings = _services(request).settings
    return settings.apps.catalog_title, settings.organization


async def catalog_page(request: Request) -> Response:
    title, organization = _names(request)
    sessions = _sessions(request)
    token = request.cookies.get(COOKIE, "")
    user = await sessions.user(token)
    if user is None:
        return _html(pages.sign_in(title, organization, ready=sessions.available))
    listed = await _listed(request, user)
    device = await _managed_device(request, user)
    name = _device_name(device) if device is not None else None
    installed = request.query_params.get("installed")
    notice = next(
        (f"{app.name} is on its way to {name}: it installs when the device next checks in."
         for app in listed if app.bundle_id == installed and name is not None),
        None,
    )  # fmt: skip
    page = pages.catalog(
        title, organization, user.login, listed, form_token(token), device=name, notice=notice
    )
    return _html(page)


async def _listed(request: Request, user: CatalogUser) -> list[pages.ListedApp]:
    storage = _services(request).storage
    urls = _services(request).app_urls
    assert urls is not None
    return [
        pages.ListedApp(
            name=entry.latest.display_name,
            bundle_id=entry.app.bundle_id,
            version=f"{entry.latest.short_version} ({entry.latest.build})",
            size=entry.latest.size,
            description=entry.app.description,
            icon_src=_icon_src(urls, app_icon(entry.app, entry.latest)),
            install_link=urls.install_link(entry.app.bundle_id, entry.latest.version_id),
        )
        for entry in await entitled(storage, user.groups)
    ]


async def _managed_device(request: Request, user: CatalogUser) -> Enrollment | None:
    """The device a managed install goes to: the user's one enrolled device (enrolled over
    the air under this login). None with none or several — the catalog cannot tell which
    phone it is open on — or when the server has no app library."""
    services = _services(request)
    if services.apps is None:
        return None
    mine = DeviceFilters(enrolled_by=user.login, state="enrolled")
    found = (await services.storage.list_devices(mine, limit=2)).devices
    return found[0].enrollment if len(found) == 1 else None


def _device_name(device: Enrollment) -> str:
    facts = device.facts
    return facts.device_name or facts.model_name or facts.serial_number or "your device"


def _icon_src(urls: AppUrls, sha256: str | None) -> str | None:
    """The icon's signed link as a path on this site: the page shows it from wherever the
    browser reached us (the manifest's links need the public base URL; a page does not)."""
    if sha256 is None:
        return None
    return urls.icon_url(sha256).removeprefix(urls.base_url)


async def sign_in(request: Request) -> Response:
    form = await read_form(request, MAX_FORM_BYTES)
    user = form.get("user", "").strip()[:MAX_LOGIN_LENGTH]
    title, organization = _names(request)
    sessions = _sessions(request)
    # The attempt limit is /enroll's (`[enroll]` sign_in_attempts_*): both sites sign in
    # against the same directory, so attempts at either count against one budget.
    limit = _services(request).enroll_sign_in_limit
    signed_in = await sign_in_with_directory(
        request, user, form.get("password", ""), sessions.sign_in, site="catalog", limit=limit
    )
    if isinstance(signed_in, SignInRefused):
        page = pages.sign_in(title, organization, signed_in.message, user, ready=sessions.available)
        return _html(page, signed_in.status, signed_in.retry_after)
    token, person = signed_in
    await sessions.sign_out(request.cookies.get(COOKIE, ""))  # planted or stale: never kept
    log.info("catalog_signed_in", user=person.login, groups=list(person.groups))
    response = RedirectResponse(HOME, 303, headers=PAGE_HEADERS)
    seconds = int(sessions.ttl.total_seconds())
    response.set_cookie(COOKIE, token, max_age=seconds, path=HOME, secure=_secure(request),
                        httponly=True, samesite="lax")  # fmt: skip
    return response


async def sign_out(request: Request) -> Response:
    form = await read_form(request, MAX_FORM_BYTES)
    token = request.cookies.get(COOKIE, "")
    if not form_token_matches(token, form.get("form_token")):
        return _refused(request, UNVERIFIED, 403)
    await _sessions(request).sign_out(token)
    log.info("catalog_signed_out")
    response = RedirectResponse(HOME, 303, headers=PAGE_HEADERS)
    response.delete_cookie(COOKIE, path=HOME, secure=_secure(request), httponly=True)
    return response


async def install(request: Request) -> Response:
    """The managed install on the user's one enrolled device: the app must be offered to
    them and the device is found again here (the form names only the app). Recorded in
    the audit log as `app.install`, via catalog, refusals too."""
    form = await read_form(request, MAX_FORM_BYTES)
    token = request.cookies.get(COOKIE, "")
    user = await _sessions(request).user(token)
    if user is None:
        return _refused(request, "Your session has ended, so nothing was installed.", 401)
    if not form_token_matches(token, form.get("form_token")):
        return _refused(request, UNVERIFIED, 403)
    services = _services(request)
    bundle_id = form.get("bundle_id", "")[:255]
    actor = AuditActor.catalog_user(user.login)
    device = await _managed_device(request, user)
    targets = [bundle_id] + ([device.device_id] if device is not None else [])
    try:
        if bundle_id not in {
            e.app.bundle_id for e in await entitled(services.storage, user.groups)
        }:
            raise LookupError("This app is not offered to you, so nothing was installed.")
        if device is None or services.apps is None:
            raise LookupError(NO_DEVICE)
        command = await services.apps.install_on(bundle_id, device.device_id)
    except LookupError as exc:
        reason = str(exc)
        await services.audit.record(actor, "app.install", targets, Outcome.FAILED, reason=reason)
        return _refused(request, reason, 409)
    await services.audit.record(actor, "app.install", targets, detail={"command_uuid": command})
    log.info("catalog_managed_install", user=user.login, bundle_id=bundle_id,
             device_id=targets[-1], command_uuid=command)  # fmt: skip
    return RedirectResponse(f"{HOME}?installed={quote(bundle_id)}", 303, headers=PAGE_HEADERS)


def _refused(request: Request, message: str, status: int) -> Response:
    title, organization = _names(request)
    return _html(pages.refused(title, organization, message), status)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def stylesheet(request: Request) -> Response:
    return Response(pages.STYLE, media_type="text/css", headers=_STATIC)


async def icon(request: Request) -> Response:
    return Response(ICON.read_bytes(), media_type="image/png", headers=_STATIC)


_STATIC = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}

routes = [
    Route(HOME, catalog_page, methods=["GET"]),
    Route(HOME, sign_in, methods=["POST"]),
    Route(f"{HOME}/sign-out", sign_out, methods=["POST"]),
    Route(f"{HOME}/install", install, methods=["POST"]),
    Route(f"{HOME}/catalog.css", stylesheet, methods=["GET"]),
    Route(f"{HOME}/catalog-icon.png", icon, methods=["GET"]),
]
