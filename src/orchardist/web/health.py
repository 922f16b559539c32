"""`/healthz` and `/readyz`: is this server up, and may a load balancer send it devices?

Both are polled every few seconds, so each costs one trivial database read and nothing
else. Both answer 200 with `{"status": "ok"}` or 503 with `{"status": "unavailable",
"reason": …}`; the reason is for the admin reading the probe's log (docs/operations.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orchardist import __version__

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    """Up: the database answers."""
    return _answer(await _database_problem(request))


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Ready for devices: the services are open (not starting, not shutting down) and the
    database answers."""
    if not getattr(request.app.state, "ready", False):
        return _answer("not ready: the server is starting or shutting down")
    return _answer(await _database_problem(request))


async def _database_problem(request: Request) -> str | None:
    services = getattr(request.app.state, "services", None)
    if services is None:
        return "not ready: the services are not open yet"
    problem: str | None = await services.storage.database_problem()
    return None if problem is None else f"the database does not answer: {problem}"


def _answer(problem: str | None) -> JSONResponse:
    if problem is None:
        return JSONResponse({"status": "ok", "version": __version__})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
