"""The OpenAPI document covers every /api/v1 route the app registers, with bodies, summaries
and the errors each answers; /api/v1/docs renders it from the app's own assets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from orchardist.accounts.permissions import RULES, Role
from orchardist.config import load_settings
from orchardist.tokens import create_api_token
from orchardist.web.api.auth import Requires
from orchardist.web.api.docs import ASSETS, DOCS, OPENAPI
from orchardist.web.app import create_app
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio
# Actions named by their URL alone: nothing to send.
BODILESS = {
    ("post", "/api/v1/devices/{udid}/push"),
    ("post", "/api/v1/commands/{command_uuid}/cancel"),
    ("post", "/api/v1/apps/catalog-clip"),
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running("sqlite", tmp_path) as started:  # HTTP behaviour, not storage
        yield started


def _api_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(method, path, route) for every /api/v1 operation the app would answer, from its
    route table, so that a route added later is covered too."""
    for context in iter_route_contexts(app.routes):
        path, route = context.path, context.original_route
        if not path or not path.startswith("/api/v1/") or path in (DOCS, OPENAPI, ASSETS):
            continue
        assert isinstance(route, APIRoute), f"{path} is not a FastAPI route"
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                yield method.lower(), path, route


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _document(tmp_path: Path) -> tuple[FastAPI, dict[str, Any]]:
    app = create_app(load_settings(tmp_path))
    return app, app.openapi()


def test_every_api_route_is_documented_with_its_errors(tmp_path: Path) -> None:
    app, document = _document(tmp_path)
    operations = list(_api_routes(app))
    assert len(operations) >= 18  # the route table was read
    for method, path, route in operations:
        where = f"{method.upper()} {path}"
        operation = document["paths"][path][method]
        assert operation["summary"], where
        assert operation["description"].strip(), where
        responses = operation["responses"]
        assert "401" in responses, where  # every /api/v1 route needs a token
        rules = [RULES[c.permission] for c in _calls(route.dependant) if isinstance(c, Requires)]
        assert len(rules) == 1, f"{where} names no permission (web/api/auth.requires)"
        assert ("403" in responses) == (rules[0].role != Role.VIEWER), where
        if "{" in path and method != "put":  # PUT creates what it names
            assert "404" in responses, where
        for status, answer in responses.items():
            assert answer["description"], f"{where} {status}"
            if status in ("401", "403", "404", "409", "413", "503"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, f"{where} {status}"
        if method in ("post", "put") and (method, path) not in BODILESS:
            assert operation["requestBody"]["content"], where
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert documented == {(m, p) for m, p, _ in operations}  # nothing stale either


def test_the_profile_upload_declares_its_raw_body(tmp_path: Path) -> None:
    _, document = _document(tmp_path)
    upload = document["paths"]["/api/v1/profiles"]["post"]
    body = upload["requestBody"]
    assert body["required"] is True
    binary = {"schema": {"type": "string", "format": "binary"}}
    assert body["content"]["application/x-apple-aspen-config"] == binary
    assert {"200", "201", "413", "422"} <= set(upload["responses"])


async def test_documented_auth_errors_are_the_ones_answered(server: Server, tmp_path: Path) -> None:
    """Without a token every operation answers 401; with a viewer's, exactly those that
    document 403 answer it."""
    app, document = _document(tmp_path)
    token = await create_api_token(server.services.storage, "docs-viewer", "viewer")
    viewer = {"Authorization": f"Bearer {token}"}
    for method, path, _ in _api_routes(app):
        url = re.sub(r"\{[^}]+\}", "x", path)
        anonymous = await server.http.request(method, url)
        assert anonymous.status_code == 401, f"{method} {path}"
        seen = await server.http.request(method, url, headers=viewer)
        documented = "403" in document["paths"][path][method]["responses"]
        assert (seen.status_code == 403) == documented, f"{method} {path}: {seen.status_code}"


async def test_the_docs_page_uses_only_its_own_assets(server: Server) -> None:
    page = await server.http.get(DOCS)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert "http://" not in html
    assert "https://" not in html
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    referenced += re.findall(r"url: '([^']+)'", html)  # the schema Swagger UI loads
    assert len(referenced) == 4, referenced  # style, icon, script, schema
    for url in referenced:
        assert url.startswith((ASSETS + "/", OPENAPI)), url  # same origin, this app
        asset = await server.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    schema = await server.http.get(OPENAPI)
    assert schema.json()["openapi"].startswith("3.")
    assert (await server.http.get(f"{ASSETS}/nothing.js")).status_code == 404
