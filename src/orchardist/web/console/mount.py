"""`install(app)`: the console's routes, headers and refusal pages on the app. A new page
module adds its `router` (from `page_router()`) to PAGES."""

from __future__ import annotations

import inspect

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchardist.web.console import (
    accounts,
    audit,
    commands,
    dashboard,
    device_actions,
    devices,
    enrollment,
    groups,
    login,
    profile_assignments,
    profile_builder,
    profiles,
    pushcert,
    static,
)
from orchardist.web.console.headers import PREFIX, ConsoleHeadersMiddleware
from orchardist.web.console.session import ConsoleRefusalError, SignInRequiredError
from orchardist.web.console.templating import render

log = structlog.get_logger("orchardist.console")
PAGES = (
    dashboard.router,
    devices.router,
    device_actions.router,
    commands.router,
    profile_builder.router,  # before profiles: /profiles/new is not an identifier
    profiles.router,
    profile_assignments.router,
    groups.router,
    enrollment.router,
    pushcert.router,
    accounts.router,
    audit.router,
)


def install(app: FastAPI) -> None:
    app.include_router(login.router)
    app.include_router(static.router)
    for router in PAGES:
        app.include_router(router)
    app.add_exception_handler(SignInRequiredError, _sign_in_first)
    app.add_exception_handler(ConsoleRefusalError, _refused)
    fallback = app.exception_handlers[StarletteHTTPException]

    async def not_here(request: Request, exc: Exception) -> Response:
        """Unknown console paths and methods get a page too; elsewhere FastAPI's answer."""
        path = request.url.path
        if isinstance(exc, StarletteHTTPException) and path.startswith(PREFIX + "/"):
            refusal = ConsoleRefusalError(exc.status_code, "Not here", f"{exc.detail}: {path}")
            return await _refused(request, refusal)
        answer = fallback(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, not_here)
    app.add_middleware(ConsoleHeadersMiddleware)


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequiredError)
    if request.method not in ("GET", "HEAD"):
        log.warning("console_session_needed", path=request.url.path, expired=exc.expired)
    if "hx-request" in request.headers:  # htmx would swap the sign-in page into a fragment
        return Response(status_code=401, headers={"HX-Redirect": exc.location})
    return RedirectResponse(exc.location, 303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusalError)
    log.warning("console_refused", path=request.url.path, status=exc.status, reason=exc.message)
    context = {"title": exc.title, "message": exc.message}
    return render(request, "refused.html", context, status_code=exc.status)
