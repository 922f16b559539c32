"""`/api/v1/docs`: the interactive API reference (Swagger UI), served by the app itself.

Swagger UI's script and style come from the `fastapi-offline` package (MIT; the Swagger UI
it bundles is Apache-2.0), so the page works on a network without Internet access and
fetches nothing from a CDN; its Content-Security-Policy lets the browser load nothing from
another origin either. The schema it renders is /api/v1/openapi.json.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Mount, Route

from orchardist import __version__

DOCS = "/api/v1/docs"
ASSETS = f"{DOCS}/assets"
OPENAPI = "/api/v1/openapi.json"
ASSET_DIR = Path(str(files("fastapi_offline") / "static"))
# Swagger UI starts from an inline script and styles itself inline; everything else, the
# schema included, comes from this server.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


async def docs_page(request: Request) -> Response:
    root = request.scope.get("root_path", "")  # behind a proxy that adds a prefix
    page = get_swagger_ui_html(
        openapi_url=f"{root}{OPENAPI}",
        title=f"Orchardist {__version__} API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        # validatorUrl: Swagger UI would otherwise send the schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )
    page.headers["Content-Security-Policy"] = POLICY
    return page


routes: list[BaseRoute] = [
    Route(DOCS, docs_page, methods=["GET"]),
    Mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets"),
]
