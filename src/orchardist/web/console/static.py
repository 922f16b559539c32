"""/console/static/…: the console's stylesheet and htmx's script, served by the app from
installed packages (no CDN: the Content-Security-Policy allows only this site).

htmx comes from PyPI's django-js-lib-htmx (htmx 2.0.3, 0BSD), which holds htmx's own
build files and needs no Django: only the file is read here.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from fastapi import APIRouter, Response

from orchardist.web.console.refusal import ConsoleRefusalError

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
router = APIRouter(prefix="/console/static", include_in_schema=False)


@functools.cache
def _files() -> dict[str, bytes]:
    ours = files("orchardist.web.console") / "static"
    found = {item.name: item.read_bytes() for item in ours.iterdir() if item.is_file()}
    found["htmx.min.js"] = (files("js_lib_htmx") / "static" / "htmx" / "htmx.min.js").read_bytes()
    return found


@router.get("/{name}")
async def static_file(name: str) -> Response:
    body = _files().get(name)
    kind = TYPES.get(name[name.rfind(".") :]) if "." in name else None
    if body is None or kind is None:
        raise ConsoleRefusalError(404, "Not here", f"There is no file {name}.")
    return Response(body, media_type=kind)
