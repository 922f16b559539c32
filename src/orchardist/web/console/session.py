"""The console's session cookie, the sign-in requirement, the CSRF check and the
permission check, as FastAPI dependencies.

- `guard` runs before every console route (`page_router()` adds it): for a POST (PUT,
  PATCH, DELETE) it needs a live session, else back to sign-in ("nothing was changed"),
  and that session's CSRF token in the form field `csrf_token` (or the X-CSRF-Token
  header htmx sends), else a 403 page. GET and HEAD change nothing and pass.
- `CurrentAccount` (`current_account`): the signed-in Actor, or a redirect to sign-in.
- `require(permission)`: the signed-in Actor when its role has the permission (asked
  through Services.gate, as the API does), else a 403 page naming the role needed;
  `check(request, actor, permission)` is the same check inside a handler.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from orchardist.accounts.permissions import Actor, Permission, PermissionDeniedError
from orchardist.accounts.sessions import Session
from orchardist.web.console.forms import form_of
from orchardist.web.console.refusal import LOGIN as LOGIN
from orchardist.web.console.refusal import ConsoleRefusalError as ConsoleRefusalError
from orchardist.web.console.refusal import SignInRequiredError as SignInRequiredError
from orchardist.wiring import Services

SESSION_COOKIE = "orchardist_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HOME = "/console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def session_of(request: Request) -> Session | None:
    """The session `guard` or `current_account` found for this request, if any."""
    found = getattr(request.state, "console_session", None)
    return found if isinstance(found, Session) else None


async def resume(request: Request) -> Session | None:
    """The live session named by the cookie (once per request), or None."""
    if hasattr(request.state, "console_session"):
        return session_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = None
    if session_id:
        session = await services_of(request).accounts.sessions.resume(session_id)
    request.state.console_session = session
    return session


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a console path of this site, never elsewhere (no open
    redirect through `next=`), and never back to the sign-in or sign-out pages."""
    if not value or any(ord(c) < 32 or c == "\\" for c in value):
        return HOME
    parts = urlsplit(value)
    path = parts.path
    if parts.scheme or parts.netloc or value.startswith("//"):
        return HOME
    if not (path == HOME or path.startswith(HOME + "/")) or ".." in path or "%" in path:
        return HOME
    if path in (LOGIN, "/console/logout"):
        return HOME
    return value


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _form_page(request: Request) -> str:
    """The page a refused form was on (its Referer, when it is one of ours)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return HOME
    page = referer.path + (f"?{referer.query}" if referer.query else "")
    return safe_next(page)


async def guard(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    session = await resume(request)
    if session is None:
        # A form posted without a live session: timed out, ended elsewhere, or signed out
        # in another tab (which takes the cookie away too). Whichever, the sign-in page
        # says that nothing was changed.
        raise SignInRequiredError(_form_page(request), expired=True)
    form: FormData = await form_of(request)
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not session.csrf_matches(given if isinstance(given, str) else None):
        raise ConsoleRefusalError(
            403,
            "This form could not be verified",
            "The request did not carry this session's security token, so nothing was "
            "changed. Go back, reload the page and try again.",
        )


async def current_account(request: Request) -> Actor:
    session = await resume(request)
    if session is None:
        raise SignInRequiredError(_here(request), expired=SESSION_COOKIE in request.cookies)
    return session.actor


CurrentAccount = Annotated[Actor, Depends(current_account)]


async def check(request: Request, actor: Actor, permission: Permission) -> None:
    """A 403 page naming the role needed unless `actor` has `permission` (asked through
    Services.gate, which records the refusal). For rules that depend on the form, such as
    the command chosen for a selection of devices."""
    try:
        await services_of(request).gate.require(actor, permission, request.url.path)
    except PermissionDeniedError as exc:
        reason = str(exc)
        raise ConsoleRefusalError(403, "Not allowed", f"{reason[:1].upper()}{reason[1:]}.") from exc


class Require:
    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request, actor: CurrentAccount) -> Actor:
        await check(request, actor, self.permission)
        return actor


def require(permission: Permission) -> Any:
    """`actor: Annotated[Actor, require(Permission.LOCK)]` in a console handler."""
    return Depends(Require(permission))


def page_router() -> APIRouter:
    """The router every console page module starts from: under /console, out of the
    OpenAPI document, HTML by default, every route behind `guard`."""
    return APIRouter(
        prefix=HOME,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(guard)],
    )
