"""Error answers that can always be written.

A 422 quotes the input it refuses, and an HTTPException's detail may quote a path or a
header; that text comes from the client and may be bytes that are not UTF-8 (a body sent
without a JSON Content-Type), a float JSON cannot hold (`1e999` parses as inf) or a lone
surrogate (`"\\ud800"` parses too). FastAPI's own handlers fail on each with a 500."""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

log = structlog.get_logger("orchardist.web")


async def http_error(request: Request, exc: Exception) -> Response:
    # Devices and SCEP clients read text, API clients JSON; both get the reason.
    assert isinstance(exc, HTTPException)
    detail = json_safe(exc.detail)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)
    return PlainTextResponse(f"{detail}\n", status_code=exc.status_code, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's usual 422 shape: {"detail": [{"loc", "msg", "type", "input", …}]}."""
    assert isinstance(exc, RequestValidationError)
    errors = json_safe(exc.errors())
    log.warning("api_invalid", path=request.url.path, errors=[e.get("loc") for e in errors])
    return JSONResponse({"detail": errors}, status_code=422)


def json_safe(value: Any) -> Any:
    """`value` with everything JSON cannot carry turned into readable text."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "nan"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {json_safe(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return json_safe(str(value))  # an exception in a pydantic error's ctx, for one
