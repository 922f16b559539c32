"""/console/login (sign in) and /console/logout (sign out).

The sign-in form is protected against login CSRF before any session exists: GET sets a
short-lived random cookie, and the form's csrf_token is a digest of it, which a page on
another site can neither read nor compute (double submit, bound to this browser). A
successful sign-in always starts a new session with a new id; whatever session cookie the
browser held before (planted or not) is ended, never reused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from orchardist.accounts.lockout import LockedOutError
from orchardist.accounts.service import SignInError
from orchardist.enroll.directory import DirectoryUnavailableError
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import (
    CSRF_FIELD,
    LOGIN,
    SESSION_COOKIE,
    ConsoleRefusalError,
    guard,
    safe_next,
    services_of,
)
from orchardist.web.console.templating import render

log = structlog.get_logger("orchardist.console")
LOGIN_COOKIE = "orchardist_login"
LOGIN_COOKIE_SECONDS = 3600
MAX_LOGIN_LENGTH = 256
router = APIRouter(prefix="/console", include_in_schema=False)


def _login_token(cookie: str) -> str:
    return hashlib.sha256(b"orchardist console login:" + cookie.encode()).hexdigest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get(LOGIN.removeprefix("/console"))
async def sign_in_page(request: Request) -> Response:
    """The form, always: signing in again replaces whatever session the browser holds."""
    params = request.query_params
    target = safe_next(params.get("next"))
    notice = None
    if params.get("expired"):
        notice = "Your session has ended, so nothing was changed: sign in again."
    elif params.get("signed_out"):
        notice = "You have signed out."
    return _form(request, target, notice=notice)


@router.post(LOGIN.removeprefix("/console"))
async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    target, user = safe_next(_text(form.get("next"))), _text(form.get("user"))[:MAX_LOGIN_LENGTH]
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = _text(form.get(CSRF_FIELD))
    if not cookie or not hmac.compare_digest(given.encode(), _login_token(cookie).encode()):
        log.warning("console_sign_in_unverified", user=user)
        raise ConsoleRefusalError(
            403,
            "This sign-in form could not be verified",
            "It has expired or did not come from this site. Open the sign-in page again "
            "and sign in from there.",
        )
    address = request.client.host if request.client else "unknown"
    accounts = services_of(request).accounts
    try:
        signed_in = await accounts.sign_in(user, _text(form.get("password")), address)
    except LockedOutError as exc:
        log.warning("console_sign_in_locked", user=user, address=address, until=exc.until)
        retry = str(max(1, int((exc.until - accounts.clock()).total_seconds())))
        return _form(request, target, str(exc), user, 429, {"Retry-After": retry})
    except SignInError as exc:
        log.warning("console_sign_in_refused", user=user, address=address, reason=str(exc))
        return _form(request, target, str(exc), user, 401)
    except DirectoryUnavailableError as exc:
        log.error("console_directory_unavailable", error=str(exc))
        message = "The directory cannot be reached to check your password: try again later."
        return _form(request, target, message, user, 503)
    actor = signed_in.session.actor
    log.info("console_signed_in", user=actor.name, role=actor.role.value, kind=actor.kind)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await accounts.sessions.end(previous)  # planted or stale: never carried over
    response = RedirectResponse(target, 303)
    response.set_cookie(SESSION_COOKIE, signed_in.session_id, path="/console",
                        secure=_secure(request), httponly=True, samesite="lax")  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN)
    return response


@router.post("/logout", dependencies=[Depends(guard)])
async def sign_out(request: Request) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    await services_of(request).accounts.sessions.end(session_id)
    log.info("console_signed_out")
    response = RedirectResponse(f"{LOGIN}?signed_out=1", 303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _form(
    request: Request,
    target: str,
    message: str | None = None,
    user: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    notice: str | None = None,
) -> Response:
    """The sign-in page with its login CSRF cookie (the browser's, if it has one)."""
    cookie = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    context = {"title": "Sign in", "next": target, "message": message, "notice": notice,
               "login_user": user, "login_token": _login_token(cookie)}  # fmt: skip
    response = render(request, "login.html", context, status_code=status, headers=headers)
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_COOKIE_SECONDS, path=LOGIN,
                        secure=_secure(request), httponly=True, samesite="strict")  # fmt: skip
    return response


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
