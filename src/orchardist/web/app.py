"""create_app: assembles the HTTP surfaces on one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from orchardist import __version__
from orchardist.config import Settings, load_settings, resolve_data_dir
from orchardist.logs import configure_logging
from orchardist.web import health, mdm, scep
from orchardist.web.access_log import AccessLogMiddleware
from orchardist.web.api import profiles as api_profiles
from orchardist.web.api import routes as api_routes
from orchardist.wiring import Services, open_services


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app. With `services` given the caller owns them (tests); otherwise the app opens
    them at start-up and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        opened = await open_services(settings, migrate=False)  # `serve` migrated already
        app.state.services = opened
        assert opened.pusher is not None
        pushing = asyncio.create_task(opened.pusher.run(), name="pusher")
        try:
            yield
        finally:
            pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushing
            await opened.close()

    app = FastAPI(
        title="Orchardist",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    if services is not None:
        app.state.services = services
    app.include_router(health.router)
    app.include_router(api_routes.router)
    app.include_router(api_profiles.router)
    app.router.routes.extend(scep.routes)
    app.router.routes.extend(mdm.routes)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(AccessLogMiddleware)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    # Devices and SCEP clients read text, API clients JSON; both get the reason.
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code, headers=exc.headers)


def create_app_for_worker() -> FastAPI:
    """The app of one `serve --workers N` process: the data dir comes in the environment."""
    settings = load_settings(resolve_data_dir(None))
    configure_logging(settings.log_level)
    return create_app(settings)
