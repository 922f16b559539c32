"""Bearer tokens and roles for /api/v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchardist.storage import ApiToken
from orchardist.tokens import token_digest
from orchardist.wiring import Services

bearer = HTTPBearer(auto_error=False, description="A token from `orchardist token create`")
WRITERS = frozenset({"admin", "operator"})


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiToken:
    if credentials is None:
        raise HTTPException(401, "an API token is required", {"WWW-Authenticate": "Bearer"})
    token = await services_of(request).storage.find_api_token(token_digest(credentials.credentials))
    if token is None:
        raise HTTPException(401, "unknown API token", {"WWW-Authenticate": "Bearer"})
    return token


async def writer(token: Annotated[ApiToken, Depends(caller)]) -> ApiToken:
    if token.role not in WRITERS:
        raise HTTPException(403, f"the {token.role} role cannot send commands")
    return token


Caller = Annotated[ApiToken, Depends(caller)]
Writer = Annotated[ApiToken, Depends(writer)]
