"""Text every /api/v1 route refuses before its handler runs, wherever it comes from (the
path, the query, a JSON body), so that a route added later is covered too:

- a NUL character: PostgreSQL can neither store nor compare one while SQLite can, and the
  two backends must answer alike;
- a lone surrogate: `"\\ud800"` is valid JSON but not Unicode, and no driver encodes it;
- a JSON body nested deeper than a plist may be (it would become a command's plist), or so
  deep that Python's parser gives up.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from orchardist.plists import MAX_DEPTH

_UNSTORABLE = re.compile("[\\x00\\ud800-\\udfff]")


async def storable_text(request: Request) -> None:
    """A dependency of the API routers: 422 naming each refused value, in FastAPI's shape."""
    errors = _param_errors(request)
    if not errors and "json" in request.headers.get("content-type", "json"):
        errors = _body_errors(await request.body())
    if errors:
        raise RequestValidationError(errors)


async def storable_params(request: Request) -> None:
    """`storable_text` for the path and query only: for a route whose body is a stream (an
    upload), which reading here would hold whole in memory."""
    errors = _param_errors(request)
    if errors:
        raise RequestValidationError(errors)


def _param_errors(request: Request) -> list[dict[str, Any]]:
    return [
        _error([where, name], problem, value)
        for where, params in (("path", request.path_params), ("query", request.query_params))
        for name, value in params.items()
        if (problem := _problem(value)) is not None
    ]


def _body_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(body) if body else None
    except RecursionError:
        return [_error(["body"], f"nested deeper than {MAX_DEPTH} levels", None)]
    except ValueError:
        return []  # not JSON: FastAPI's own parsing says so
    pending: list[tuple[Any, list[Any]]] = [(document, ["body"])]
    while pending:
        value, where = pending.pop()
        if len(where) > MAX_DEPTH:
            return [_error(["body"], f"nested deeper than {MAX_DEPTH} levels", None)]
        if isinstance(value, dict):
            for key, item in value.items():
                if (problem := _problem(key)) is not None:
                    return [_error(where, f"a key {problem}", key)]
                pending.append((item, [*where, key]))
        elif isinstance(value, list):
            pending.extend((item, [*where, index]) for index, item in enumerate(value))
        elif isinstance(value, str) and (problem := _problem(value)) is not None:
            return [_error(where, problem, value)]
    return []


def _problem(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain a NUL character"
    return "is not valid Unicode text (a lone surrogate)"


def _error(loc: list[Any], message: str, value: Any) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "value_error", "input": value}
