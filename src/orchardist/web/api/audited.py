"""Recording /api/v1's changes in the audit log, in one place.

A state-changing route names its action with `@audited("command.queue", describe)`, and
its router uses `AuditedRoute`: every call of it is recorded after the handler, whatever
happened — ok (2xx), denied (403: the token's role may not) or failed (any other 4xx, the
reason being the answer's detail), with the calling token's name as the actor and the
targets named in the path and body (`describe` reads them; without it, the path's values).
401s are not recorded: nobody known asked. The handler adds what only it learns (a
command's UUID, the identifier inside an uploaded profile) through `note(request)`.

The refusal recorded for a 403 is the route's own action with its targets, so the console's
permission gate leaves API tokens' refusals to this module (see AuditLog.record_denial).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from orchardist.audit import Actor, Outcome
from orchardist.tokens import token_digest
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.audit")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# (path parameters, the JSON body or None) → (targets, detail): read from a request that
# may be invalid, so every value is checked before use.
Describe = Callable[[Mapping[str, str], Any], tuple[list[str], dict[str, Any]]]
_ATTRIBUTE = "__orchardist_audit__"


@dataclass(frozen=True)
class AuditSpec:
    action: str
    describe: Describe | None = None


@dataclass
class AuditNote:
    """What the handler adds to its entry: more targets, more detail (never a secret)."""

    targets: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def audited(action: str, describe: Describe | None = None) -> Callable[[Endpoint], Endpoint]:
    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ATTRIBUTE, AuditSpec(action, describe))
        return endpoint

    return mark


def spec_of(endpoint: Callable[..., Any]) -> AuditSpec | None:
    spec = getattr(endpoint, _ATTRIBUTE, None)
    return spec if isinstance(spec, AuditSpec) else None


def note(request: Request) -> AuditNote:
    """This request's note (a throw-away one on a route that is not audited)."""
    found = getattr(request.state, "audit_note", None)
    return found if isinstance(found, AuditNote) else AuditNote()


class AuditedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        spec = spec_of(self.endpoint)
        if spec is None:
            return handler

        async def recorded(request: Request) -> Response:
            request.state.audit_note = AuditNote()
            try:
                response = await handler(request)
            except HTTPException as exc:
                await _record(request, spec, exc.status_code, _reason(exc.detail))
                raise
            except RequestValidationError as exc:
                await _record(request, spec, 422, _invalid(exc.errors()))
                raise
            except Exception:
                await _record(request, spec, 500, "the server failed (see its log)")
                raise
            await _record(request, spec, response.status_code, None)
            return response

        return recorded


async def _record(request: Request, spec: AuditSpec, status: int, reason: str | None) -> None:
    if status == 401:
        return
    services: Services = request.app.state.services
    try:
        actor = await _actor(request, services)
        if actor is None:
            return
        targets, detail = await _described(request, spec)
        written = note(request)
        await services.audit.record(actor, spec.action, [*targets, *written.targets],
                                    _outcome(status), {**detail, **written.detail},
                                    reason=reason)  # fmt: skip
    except Exception:
        # The change is made (or refused) already: answering 500 now would misreport it.
        log.exception("audit_write_failed", action=spec.action, path=request.url.path)


def _outcome(status: int) -> Outcome:
    if status < 400:
        return Outcome.OK
    return Outcome.DENIED if status == 403 else Outcome.FAILED


async def _actor(request: Request, services: Services) -> Actor | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    token = await services.storage.find_api_token(token_digest(credentials.strip()))
    return None if token is None else Actor.api_token(token.name)


async def _described(request: Request, spec: AuditSpec) -> tuple[list[str], dict[str, Any]]:
    path = {k: v for k, v in request.path_params.items() if isinstance(v, str)}
    if spec.describe is None:
        return list(path.values()), {}
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):  # not JSON, or too deep: FastAPI refuses it
        body = None
    return spec.describe(path, body)


def _reason(detail: Any) -> str:
    if isinstance(detail, dict) and isinstance(detail.get("problems"), list):
        return f"refused by Apple's schema: {len(detail['problems'])} problem(s)"
    return str(detail)


def _invalid(errors: Any) -> str:
    """FastAPI's 422 errors as `where: what`, without the input they quote (a bad value may
    be a secret)."""
    parts = [
        f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in errors[:5]
        if isinstance(error, dict)
    ]
    return "; ".join(parts) or "invalid request"


def strings(value: Any) -> list[str]:
    """The strings of a JSON list (anything else: none), for `describe` functions."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def field_of(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None
