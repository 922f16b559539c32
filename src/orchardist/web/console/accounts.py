"""/console/accounts: console accounts and API tokens (admins only): list both, create a
token (shown once), revoke a token, disable an account. The same services as
`orchardist admin` and `orchardist token`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from orchardist.accounts.permissions import ROLES, Actor, Permission
from orchardist.accounts.service import AccountError
from orchardist.audit import Actor as AuditActor
from orchardist.tokens import create_api_token
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import ConsoleRefusalError, page_router, require, services_of
from orchardist.web.console.templating import render

log = structlog.get_logger("orchardist.console")
router = page_router()
AccountsAdmin = Annotated[Actor, require(Permission.ACCOUNTS)]
TokensAdmin = Annotated[Actor, require(Permission.TOKENS)]
PAGE = "/console/accounts"
MAX_TOKEN_DAYS = 3650


@router.get("/accounts")
async def accounts_page(request: Request, _: AccountsAdmin) -> Response:
    storage = services_of(request).storage
    now = datetime.now(UTC)
    tokens = [(t, t.state(now)) for t in await storage.list_api_tokens()]
    context = {
        "title": "Accounts",
        "accounts": await storage.list_accounts(),
        "tokens": tokens,
        "roles": [r.value for r in ROLES],
        "done": request.query_params.get("done"),
    }
    return render(request, "accounts.html", context)


@router.post("/accounts/disable")
async def disable_account(request: Request, actor: AccountsAdmin) -> Response:
    name = await _name(request)
    try:
        await services_of(request).accounts.disable(name)
    except AccountError as exc:
        raise ConsoleRefusalError(404, "No such account", str(exc)) from exc
    await _audit(request, actor, "account.disable", name)
    log.info("console_account_disabled", account=name, by=actor.name)
    return RedirectResponse(f"{PAGE}?done=disabled", 303)


@router.post("/tokens")
async def create_token(request: Request, actor: TokensAdmin) -> Response:
    form = await form_of(request)
    name, role, days = (str(form.get(k) or "").strip() for k in ("name", "role", "expires_days"))
    if not name or len(name) > 128 or role not in {r.value for r in ROLES}:
        raise ConsoleRefusalError(422, "Token not created", "Give a name (up to 128 characters) "
                                  "and a role: admin, operator or viewer.")  # fmt: skip
    if days and not (days.isdigit() and 1 <= int(days) <= MAX_TOKEN_DAYS):
        raise ConsoleRefusalError(422, "Token not created", "Expiry: 1 to 3650 days, or empty.")
    expires = datetime.now(UTC) + timedelta(days=int(days)) if days else None
    try:
        value = await create_api_token(services_of(request).storage, name, role, expires_at=expires)
    except ValueError as exc:
        raise ConsoleRefusalError(409, "Token not created", str(exc)) from exc
    await _audit(request, actor, "token.create", name, {"role": role})
    log.info("console_token_created", token=name, role=role, by=actor.name)
    context = {"title": "Token created", "name": name, "role": role, "token": value,
               "expires_at": expires}  # fmt: skip
    return render(request, "token_created.html", context, status_code=201)


@router.post("/tokens/revoke")
async def revoke_token(request: Request, actor: TokensAdmin) -> Response:
    name = await _name(request)
    if not await services_of(request).storage.revoke_api_token(name, datetime.now(UTC)):
        raise ConsoleRefusalError(404, "No such token", f"There is no API token named {name!r}.")
    await _audit(request, actor, "token.revoke", name)
    log.info("console_token_revoked", token=name, by=actor.name)
    return RedirectResponse(f"{PAGE}?done=revoked", 303)


async def _audit(
    request: Request, actor: Actor, action: str, target: str, detail: dict[str, str] | None = None
) -> None:
    """Recorded as the CLI records `admin disable` and `token create|revoke`."""
    await services_of(request).audit.record(
        AuditActor.account(actor.name), action, [target], detail=detail
    )


async def _name(request: Request) -> str:
    name = (await form_of(request)).get("name")
    return name if isinstance(name, str) else ""
