"""Bearer tokens and permissions for /api/v1.

Each route names the permission it needs (`requires(Permission.PUSH)`); the token's role
is checked against `orchardist.accounts.permissions` through `Services.gate`, the same
check the console makes. No token, an unknown, expired or revoked one: 401. A role below
the permission: 403 naming the role needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchardist.accounts.permissions import Actor, Permission, PermissionDeniedError, Role
from orchardist.tokens import token_digest
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.api")
bearer = HTTPBearer(auto_error=False, description="A token from `orchardist token create`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def token_actor(request: Request, credentials: Credentials) -> Actor:
    """The caller, from its bearer token; 401 unless the token is known and usable."""
    if credentials is None:
        raise HTTPException(401, "an API token is required", CHALLENGE)
    storage = services_of(request).storage
    token = await storage.find_api_token(token_digest(credentials.credentials))
    if token is None:
        raise HTTPException(401, "unknown API token", CHALLENGE)
    refusal = token.refusal(datetime.now(UTC))
    if refusal is not None:
        log.warning("api_token_refused", token=token.name, reason=refusal)
        raise HTTPException(401, f"{refusal}: ask an admin for a new one", CHALLENGE)
    return Actor(token.name, Role(token.role), "token")


async def check(
    request: Request, actor: Actor, permission: Permission, target: str | None = None
) -> None:
    """403 unless `actor` has `permission` (for rules that depend on the body, such as a
    command's RequestType)."""
    try:
        await services_of(request).gate.require(actor, permission, target)
    except PermissionDeniedError as exc:
        log.warning("api_denied", token=actor.name, permission=permission.value)
        raise HTTPException(403, str(exc)) from exc


class Requires:
    """The dependency `requires` builds; it keeps its permission, so that tests and docs can
    read each route's rule from the route table."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request, credentials: Credentials) -> Actor:
        actor = await token_actor(request, credentials)
        await check(request, actor, self.permission)
        return actor


def requires(permission: Permission) -> Any:
    """`Annotated[Actor, requires(Permission.X)]`: the calling token, allowed to do X."""
    return Depends(Requires(permission))


Reader = Annotated[Actor, requires(Permission.READ)]
