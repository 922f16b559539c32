"""Roles in the console: the same permission table as the API, refusals told to the gate's
listener (the audit log's seam), and every name escaped."""

from __future__ import annotations

import re

import pytest

from orchardist.accounts.permissions import Actor, Permission
from orchardist.storage.audit import AuditQuery
from orchardist.tokens import create_api_token
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio


async def test_an_operator_posting_an_admin_action_is_refused(server: Server) -> None:
    await add_account(server, "olga", "operator")
    await create_api_token(server.services.storage, "ci", "viewer")
    told: list[tuple[str, Permission, str | None]] = []
    before = server.services.gate.on_denied

    async def listener(actor: Actor, permission: Permission, target: str | None) -> None:
        told.append((actor.name, permission, target))
        if before is not None:
            await before(actor, permission, target)

    server.services.gate.on_denied = listener
    async with browser(server) as client:
        token = await signed_in(client, "olga")  # a valid session and CSRF token
        refused = await client.post("/console/tokens/revoke",
                                    data={"name": "ci", "csrf_token": token})  # fmt: skip
        assert refused.status_code == 403
        assert (
            "The operator role cannot create, list and revoke API tokens: that needs admin."
            in refused.text
        )
        assert (await client.get("/console/accounts")).status_code == 403
    (ci,) = await server.services.storage.list_api_tokens()
    assert ci.revoked_at is None
    assert told == [
        ("olga", Permission.TOKENS, "/console/tokens/revoke"),
        ("olga", Permission.ACCOUNTS, "/console/accounts"),
    ]


async def test_an_admin_manages_tokens_and_accounts(server: Server) -> None:
    await add_account(server, "ann", "admin")
    await add_account(server, "vic", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        made = await client.post("/console/tokens", data={
            "name": "ci", "role": "operator", "expires_days": "30", "csrf_token": token
        })  # fmt: skip
        assert made.status_code == 201
        shown = re.search(r'class="secret">(orch_[^<]+)<', made.text)
        assert shown is not None, made.text
        value = shown[1]
        api = await client.get("/api/v1/devices", headers={"Authorization": f"Bearer {value}"})
        assert api.status_code == 200
        page = (await client.get("/console/accounts")).text
        assert "ci" in page
        assert "vic" in page
        disabled = await client.post("/console/accounts/disable",
                                     data={"name": "vic", "csrf_token": token})  # fmt: skip
        assert disabled.headers["location"] == "/console/accounts?done=disabled"
    vic = await server.services.storage.get_account("vic")
    assert vic is not None
    assert vic.disabled_at is not None
    entries = await server.services.storage.audit_entries(AuditQuery())
    recorded = {(e.actor, e.via.value, e.action, tuple(e.targets)) for e in entries}
    assert {("ann", "console", "token.create", ("ci",)),
            ("ann", "console", "account.disable", ("vic",))} <= recorded  # fmt: skip
    assert value not in repr(entries)  # the token's value is never recorded


async def test_names_are_escaped(server: Server) -> None:
    await add_account(server, "ann", "admin")
    evil = '<script>alert("x")</script>\''
    await create_api_token(server.services.storage, evil, "viewer")
    async with browser(server) as client:
        await signed_in(client, "ann")
        page = (await client.get("/console/accounts")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;" in page
