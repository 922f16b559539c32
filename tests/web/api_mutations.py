"""Requests for the route-by-route mutation test: every route the app serves, read from
the app itself, with its path and query parameters and its body drawn from what the
OpenAPI document says (valid-looking values, then mutated: wrong types, huge numbers,
NaN and Infinity tokens, long and odd text, bytes that are not UTF-8)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from hypothesis import strategies as st
from starlette.routing import Mount

from tests.web.mutations import (
    BOUNDARY_INTEGERS,
    Raw,
    children,
    long_texts,
    mutated,
    texts,
    written,
)

CONTENT_TYPES = [
    None,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=latin-1",
    "application/x-apple-aspen-config",
]
ODD_SEGMENTS = ["%ff%fe", "%00", "%ED%A0%80", "..", "%2e%2e%2f", "a%2Fb", "%20", "%"]
# Values a valid request would carry, by field name; other fields get one by their type.
FIELD_SEEDS: dict[str, Any] = {
    "request_type": "DeviceLock",
    "params": {"Message": "Call IT"},
    "priority": 5,
    "expires_in_seconds": 3600,
    "user": "alice",
    "email": "alice@example.com",
    "sms": "+15555550100",
    "confirm": True,
    "all": False,
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /api/v1/devices/{udid}
    query: dict[str, str] = field(default_factory=dict)  # name → JSON schema type
    body: dict[str, Any] | None = None  # the JSON schema of a JSON body

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app routes, described by its OpenAPI document where the
    route is in it."""
    document = app.openapi()
    found = []
    for methods, path in _routes(app.routes):
        for method in sorted(methods - {"HEAD"}):
            operation = document["paths"].get(path, {}).get(method.lower(), {})
            query = {
                p["name"]: p["schema"].get("type", "string")
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            }
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json")
            body = _resolve(schema["schema"], document) if schema else None
            found.append(Endpoint(method, path, query, body))
    return found


def _routes(routes: Any) -> Iterator[tuple[set[str], str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _routes(route.original_router.routes)
        elif isinstance(route, Mount):
            yield {"GET"}, route.path + "/{path}"
        else:
            yield set(route.methods), route.path


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(document["components"]["schemas"][name], document)
    return schema


def seed_for(schema: dict[str, Any], known: dict[str, str], name: str = "") -> Any:
    """A valid-looking value for a JSON schema (the first choice of an anyOf)."""
    if name in FIELD_SEEDS:
        return FIELD_SEEDS[name]
    if name in ("devices", "targets"):
        return [known["udid"]]
    if name == "groups":
        return [known["name"]]
    if "anyOf" in schema:
        return seed_for(schema["anyOf"][0], known, name)
    kind = schema.get("type")
    if kind == "object":
        return {key: seed_for(sub, known, key) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [seed_for(schema.get("items", {}), known)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "x")


def _json(value: Any) -> Any:
    """Mutated trees hold plist values: as JSON, bytes are base64, dates ISO strings."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Raw):
        return value.xml
    raise TypeError(type(value).__name__)


@st.composite
def bodies(
    draw: st.DrawFn, endpoint: Endpoint, known: dict[str, str], profile: dict[str, Any]
) -> tuple[bytes | None, str | None]:
    """(body, Content-Type): the endpoint's JSON mutated, a mutated profile plist, bytes."""
    kind = draw(st.sampled_from(["shaped", "valid", "shaped", "profile", "bytes", "none"]))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if kind == "none":
        return None, content_type
    if kind == "bytes":
        return draw(st.binary(max_size=300)), content_type
    if kind == "profile":
        return draw(mutated(profile).flatmap(written)), content_type
    seed = seed_for(endpoint.body or {"type": "object"}, known)
    tree = {"_": seed} if kind == "valid" else draw(mutated({"_": seed}))  # "_": the body
    # itself may be replaced too
    if draw(st.booleans()):
        _spoil_text(tree, draw)
    text = json.dumps(tree.get("_", tree), default=_json)  # NaN and Infinity as Python writes
    return text.encode(), content_type if draw(st.integers(0, 4)) == 4 else "application/json"


def _spoil_text(tree: dict[str, Any], draw: st.DrawFn) -> None:
    """One string of the tree made one JSON can carry but storage cannot, or too long."""
    places = [(parent, key) for parent, key in _containers(tree) if isinstance(parent[key], str)]
    if places:
        parent, key = draw(st.sampled_from(places))
        parent[key] = draw(st.sampled_from(["a\x00b", "\ud800", "x" * 256, "é" * 2001]))


def _containers(tree: Any) -> Iterator[tuple[Any, Any]]:
    for key, value in children(tree):
        yield tree, key
        yield from _containers(value)


def _segment(value: str) -> str:
    return quote(value, safe="")


@st.composite
def requests(
    draw: st.DrawFn, endpoint: Endpoint, known: dict[str, str], profile: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(URL, httpx keyword arguments) for one request to `endpoint`: either its parameters
    are changed and its body is valid, or the other way round, so that each change meets
    the code behind the other's checks."""
    in_params = draw(st.booleans())
    url = endpoint.path
    for name in endpoint.path_params:
        value = (
            draw(_segments(known.get(name, "x"))) if in_params else _segment(known.get(name, "x"))
        )
        url = re.sub(r"{" + name + r"(?::\w+)?}", lambda _, v=value: v, url)
    params = {name: draw(_query_values(kind)) for name, kind in endpoint.query.items() if in_params}
    if in_params and draw(st.booleans()):
        params[draw(texts)] = draw(texts)
    if in_params:
        body, content_type = _valid_body(endpoint, known)
    else:
        body, content_type = draw(bodies(endpoint, known, profile))
    sent: dict[str, Any] = {"params": params}
    if body is not None:
        sent["content"] = body
    if content_type is not None:
        sent["headers"] = {"Content-Type": content_type}
    return url, sent


def _segments(known: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(_segment(known)),
        texts.map(_segment).filter(bool),
        long_texts.map(_segment),
        st.sampled_from(ODD_SEGMENTS),
    )


def _query_values(kind: str) -> st.SearchStrategy[str]:
    numbers = (st.sampled_from(BOUNDARY_INTEGERS) | st.integers()).map(str)
    return numbers | texts if kind == "integer" else texts


def _valid_body(endpoint: Endpoint, known: dict[str, str]) -> tuple[bytes | None, str | None]:
    if endpoint.body is None:
        return None, None
    return json.dumps(seed_for(endpoint.body, known)).encode(), "application/json"
