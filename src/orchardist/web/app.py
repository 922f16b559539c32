"""create_app: assembles the HTTP surfaces on one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp

from orchardist import __version__, sched_slices
from orchardist.accounts import passwords
from orchardist.config import Settings, load_settings, resolve_data_dir
from orchardist.logs import configure_logging
from orchardist.web import (
    app_files,
    background,
    catalog,
    enroll,
    errors,
    health,
    mdm,
    metrics,
    scep,
)
from orchardist.web.access_log import AccessLogMiddleware
from orchardist.web.api import app_catalog as api_app_catalog
from orchardist.web.api import apps as api_apps
from orchardist.web.api import audit as api_audit
from orchardist.web.api import commands as api_commands
from orchardist.web.api import dashboard as api_dashboard
from orchardist.web.api import device_list as api_device_list
from orchardist.web.api import docs as api_docs
from orchardist.web.api import profiles as api_profiles
from orchardist.web.api import provisioning as api_provisioning
from orchardist.web.api import routes as api_routes
from orchardist.web.console import mount as console
from orchardist.web.proxy import behind_proxies
from orchardist.web.scep_lane import ScepLane
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
        # A thread reading a large report (mdm/reports.read_report) hands the interpreter
        # back every millisecond instead of every five, so Idles are answered meanwhile.
        sys.setswitchinterval(0.001)
        await asyncio.to_thread(passwords.dummy_hash)  # before the first sign-in, not in it
        app.state.services = opened
        # What start-up built (modules, schemas, caches: ~185,000 objects) lives as long as
        # the process: kept out of the collector's full passes, each of which walked them
        # all for ~100 ms with the event loop stopped (the slowest Idles while large
        # reports came in, mdm/report_pool.py).
        gc.collect()
        gc.freeze()
        # The loop's thread (this one) preempts busier tasks when a request wakes it;
        # it alone: threads and processes it starts begin at the default (sched_slices.py).
        sched_slices.use_short_slice()
        workers = background.start(opened)  # what runs where: web/background.py
        app.state.ready = True  # /readyz: devices may come
        try:
            yield
        finally:
            app.state.ready = False
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await opened.close()

    app = FastAPI(
        title="Orchardist",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    if services is not None:  # the caller opened them: ready now (tests skip the lifespan)
        app.state.services = services
        app.state.ready = True
    app.include_router(health.router)
    app.include_router(api_device_list.router)
    app.include_router(api_routes.router)
    app.include_router(api_profiles.router)
    app.include_router(api_app_catalog.router)
    app.include_router(api_app_catalog.icons)
    app.include_router(api_apps.router)
    app.include_router(api_apps.uploads)
    app.include_router(api_provisioning.router)
    app.include_router(api_audit.router)
    app.include_router(api_dashboard.router)
    app.include_router(api_commands.router)
    app.router.routes.extend(scep.routes)
    app.router.routes.extend(mdm.routes)
    app.router.routes.extend(enroll.routes)
    app.router.routes.extend(app_files.routes)
    app.router.routes.extend(catalog.routes)
    app.router.routes.extend(metrics.routes)
    app.router.routes.extend(api_docs.routes)
    console.install(app)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(ScepLane, state=app.state)  # enrolling devices skip it too
    app.add_middleware(mdm.MdmLane, state=app.state)  # outermost: devices skip the rest
    return app


def served(app: FastAPI) -> ASGIApp:
    """What `serve` runs: the device lanes in front of the whole framework, not only of its
    routing (its own outer layers cost a device request more than the lane's work). The
    lanes added with add_middleware stay, for apps used in process (tests)."""
    return mdm.MdmLane(ScepLane(app, state=app.state), state=app.state)


def create_app_for_worker() -> ASGIApp:
    """The app of one `serve --workers N` process: the data dir comes in the environment.
    Behind what trusted_proxies may say, as `serve` puts a single process's app."""
    settings = load_settings(resolve_data_dir(None))
    configure_logging(settings.log_level)
    return behind_proxies(served(create_app(settings)), settings)
