"""The app catalog at /apps: a user signs in with the directory, as at /enroll (the same
throttle, sessions of the same kind: orchardist.apps.catalog), and sees the apps their
directory groups are offered, each with an Install link — itms-services://, which works
on any iPhone or iPad, enrolled or not.

- GET /apps: the catalog when the session cookie names a live session, else sign-in.
- POST /apps: sign in; on success a new session (any the browser held is ended) and a
  303 back to GET /apps, so a reload never posts the password again.
- POST /apps/sign-out: ends the session (the form carries a token derived from it).
- GET /apps/catalog.css, /apps/catalog-icon.png: the pages' style and home-screen icon.

The pages carry a Content-Security-Policy like the console's (this site's styles and
images only, no script at all, no framing) and are never cached. The session cookie is
HttpOnly, SameSite=Lax, limited to /apps, Secure over HTTPS, and lives as long as the
session: a Web Clip opened again later is still signed in.
"""

from __future__ import annotations

from importlib import resources

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
ICON = resources.files("orchardist.apps").joinpath("data/catalog-icon.png")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _sessions(request: Request) -> CatalogSessions:
    """The catalog's sessions over the enrollment site's directory and session records."""
    services = _services(request)
    directory = services.ota.directory if services.ota is not None else None
    return CatalogSessions(directory, services.storage, utc_now)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


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
    return _html(pages.catalog(title, organization, user.login, listed, form_token(token)))


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
    signed_in = await sign_in_with_directory(
        request, user, form.get("password", ""), sessions.sign_in, site="catalog"
    )
    if isinstance(signed_in, SignInRefused):
        page = pages.sign_in(title, organization, signed_in.message, user, ready=sessions.available)
        return _html(page, signed_in.status)
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
        title, organization = _names(request)
        return _html(pages.unverified(title, organization), 403)
    await _sessions(request).sign_out(token)
    log.info("catalog_signed_out")
    response = RedirectResponse(HOME, 303, headers=PAGE_HEADERS)
    response.delete_cookie(COOKIE, path=HOME, secure=_secure(request), httponly=True)
    return response


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
    Route(f"{HOME}/catalog.css", stylesheet, methods=["GET"]),
    Route(f"{HOME}/catalog-icon.png", icon, methods=["GET"]),
]
