"""Signing in to /console: sessions, cookies, CSRF, lockout, timeouts, redirects, headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.accounts.sessions import session_digest
from orchardist.tokens import create_api_token
from orchardist.web.console.session import safe_next
from tests.web.console import (
    PASSWORD,
    add_account,
    browser,
    hidden,
    set_clock,
    sign_in,
    signed_in,
)
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def strict(backend: str, tmp_path: Path) -> AsyncIterator[Server]:
    """A server that locks a name after 3 failures, an address after 5, and ends sessions
    after 30 minutes idle or 1 hour in all."""
    console = {"lockout_account_failures": 3, "lockout_address_failures": 5,
               "session_absolute_hours": 1}  # fmt: skip
    async with running(backend, tmp_path, console=console) as server:
        await add_account(server, "ann", "admin")
        await add_account(server, "bob", "operator")
        yield server


async def test_sign_in_and_out(server: Server) -> None:
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        first = await client.get("/console")
        assert (first.status_code, first.headers["location"]) == (
            303,
            "/console/login?next=/console",
        )
        wrong = await sign_in(client, "ann", "not the password")
        assert wrong.status_code == 401
        assert "Unknown user or wrong password." in wrong.text
        answer = await sign_in(client, "ann")
        assert (answer.status_code, answer.headers["location"]) == (303, "/console")
        cookie = next(c for c in answer.headers.get_list("set-cookie")
                      if c.startswith("orchardist_session="))  # fmt: skip
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/console"):
            assert flag.lower() in cookie.lower(), cookie
        session_id = client.cookies["orchardist_session"]
        # Only a digest is stored: the id itself signs nobody in from a database copy.
        assert await server.services.storage.console_session(session_id) is None
        assert await server.services.storage.console_session(session_digest(session_id))
        page = await client.get("/console")
        assert "Signed in as <strong>ann</strong> (admin)" in page.text
        refused = await client.post("/console/logout")  # no CSRF token: nothing happens
        assert refused.status_code == 403
        assert (await client.get("/console")).status_code == 200
        out = await client.post("/console/logout", data={"csrf_token": hidden(page.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/console/login?signed_out=1")
        assert "You have signed out." in (await client.get(out.headers["location"])).text
        assert (await client.get("/console")).status_code == 303
        assert await server.services.storage.console_session(session_digest(session_id)) is None


async def test_the_sign_in_form_needs_its_own_token(server: Server) -> None:
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        form = {"user": "ann", "password": PASSWORD, "csrf_token": "forged"}
        answer = await client.post("/console/login", data=form)
        assert answer.status_code == 403
        assert "could not be verified" in answer.text
        assert "orchardist_session" not in client.cookies


async def test_a_name_is_locked_after_repeated_failures(strict: Server) -> None:
    async with browser(strict) as client:
        for _ in range(2):
            assert (await sign_in(client, "ann", "wrong password 1")).status_code == 401
        locked = await sign_in(client, "ann", "wrong password 1")
        assert locked.status_code == 429
        assert "Too many failed sign-ins for this account: try again after" in locked.text
        assert "(in 15 minutes)" in locked.text
        assert int(locked.headers["retry-after"]) > 800
        still = await sign_in(client, "ann")  # the right password changes nothing now
        assert still.status_code == 429
        assert "orchardist_session" not in client.cookies
        await signed_in(client, "bob")  # another name from the same address may
    set_clock(strict, datetime.now(UTC) + timedelta(minutes=16))
    async with browser(strict) as client:
        await signed_in(client, "ann")


async def test_an_address_is_locked_after_repeated_failures(strict: Server) -> None:
    async with browser(strict) as client:
        for n in range(4):
            assert (await sign_in(client, f"guess{n}", "whatever it is")).status_code == 401
        locked = await sign_in(client, "guess4", "whatever it is")
        assert locked.status_code == 429
        assert "Too many failed sign-ins from your address: try again after" in locked.text
        assert (await sign_in(client, "bob")).status_code == 429


async def test_a_planted_session_id_is_never_used(server: Server) -> None:
    await add_account(server, "ann", "admin")
    await add_account(server, "eve", "viewer")
    async with browser(server) as attacker, browser(server) as victim:
        await signed_in(attacker, "eve")
        planted = attacker.cookies["orchardist_session"]
        # The attacker's own live session id, and a made-up one, set in the victim's browser.
        for value in (planted, "made-up-by-the-attacker"):
            victim.cookies.set("orchardist_session", value, domain="mdm.test", path="/console")
            await signed_in(victim, "ann")
            assert victim.cookies["orchardist_session"] not in (planted, value)
            victim.cookies.clear()
        after = await attacker.get("/console")  # the planted session was ended, not upgraded
        assert (after.status_code, after.headers["location"]) == (
            303, "/console/login?next=/console&expired=1"
        )  # fmt: skip


async def test_a_post_without_the_token_changes_nothing(server: Server) -> None:
    await add_account(server, "ann", "admin")
    await create_api_token(server.services.storage, "ci", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        for form in ({"name": "ci"}, {"name": "ci", "csrf_token": "guessed"}):
            refused = await client.post("/console/tokens/revoke", data=form)
            assert refused.status_code == 403
            assert "This form could not be verified" in refused.text
            assert "nothing was changed" in refused.text
        (ci,) = await server.services.storage.list_api_tokens()
        assert ci.revoked_at is None
        done = await client.post("/console/tokens/revoke", data={"name": "ci", "csrf_token": token})
        assert (done.status_code, done.headers["location"]) == (
            303,
            "/console/accounts?done=revoked",
        )
        (ci,) = await server.services.storage.list_api_tokens()
        assert ci.revoked_at is not None


@pytest.mark.parametrize(
    ("given", "goes_to"),
    [
        ("/console/accounts?x=1", "/console/accounts?x=1"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/\\evil.example", "/console"),
        ("/\t/evil.example", "/console"),
        ("/api/v1/devices", "/console"),
        ("/console/../api/v1/devices", "/console"),
        ("javascript:alert(1)", "/console"),
        ("/console/login", "/console"),
    ],
)
async def test_next_never_leaves_the_console(server: Server, given: str, goes_to: str) -> None:
    assert safe_next(given) == goes_to
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        answer = await sign_in(client, "ann", next_path=given)
        assert (answer.status_code, answer.headers["location"]) == (303, goes_to)


async def test_idle_and_absolute_timeouts(strict: Server) -> None:
    start = datetime.now(UTC)
    async with browser(strict) as client:
        set_clock(strict, start)
        await signed_in(client, "ann")
        set_clock(strict, start + timedelta(minutes=31))  # idle too long
        gone = await client.get("/console/accounts")
        assert gone.headers["location"] == "/console/login?next=/console/accounts&expired=1"
        assert "Your session has ended" in (await client.get(gone.headers["location"])).text
    async with browser(strict) as client:
        set_clock(strict, start)
        await signed_in(client, "ann")
        for minutes in (20, 40):  # busy, never idle for long
            set_clock(strict, start + timedelta(minutes=minutes))
            assert (await client.get("/console")).status_code == 200
        set_clock(strict, start + timedelta(minutes=60))  # the absolute end
        assert (await client.get("/console")).status_code == 303


async def test_a_session_ending_mid_form_changes_nothing(strict: Server) -> None:
    await create_api_token(strict.services.storage, "ci", "viewer")
    start = datetime.now(UTC)
    set_clock(strict, start)
    async with browser(strict) as client:
        await signed_in(client, "ann")
        page = await client.get("/console/accounts")
        form = {"name": "ci", "csrf_token": hidden(page.text)}
        set_clock(strict, start + timedelta(minutes=45))
        referer = {"Referer": "https://mdm.test/console/accounts"}
        answer = await client.post("/console/tokens/revoke", data=form, headers=referer)
        assert (answer.status_code, answer.headers["location"]) == (
            303, "/console/login?next=/console/accounts&expired=1"
        )  # fmt: skip
        htmx = await client.post(
            "/console/tokens/revoke", data=form, headers={"HX-Request": "true"}
        )
        assert htmx.status_code == 401
        assert htmx.headers["hx-redirect"].startswith("/console/login?")
    (ci,) = await strict.services.storage.list_api_tokens()
    assert ci.revoked_at is None


async def test_pages_carry_security_headers_and_only_own_assets(server: Server) -> None:
    async with browser(server) as client:
        page = await client.get("/console/login")
    policy = page.headers["content-security-policy"]
    for part in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert part in policy
    assert "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert all(a.startswith(("/console", "#")) for a in assets), assets  # this site only
    assert {"/console/static/console.css", "/console/static/htmx.min.js"} <= set(assets)
    async with browser(server) as client:
        script = await client.get("/console/static/htmx.min.js")
        style = await client.get("/console/static/console.css")
        missing = await client.get("/console/static/nothing.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"htmx" in script.content
    assert len(script.content) > 10_000
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


async def test_refusals_are_pages(server: Server) -> None:
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        missing = await client.get("/console/nowhere")
        too_big = await client.post(
            "/console/tokens/revoke", data={"csrf_token": token, "name": "x" * (9 * 1024 * 1024)}
        )
        api = await client.get("/api/v1/nowhere")
    assert (missing.status_code, missing.headers["content-type"]) == (
        404,
        "text/html; charset=utf-8",
    )
    assert "/console/nowhere" in missing.text
    assert "default-src 'none'" in missing.headers["content-security-policy"]
    assert too_big.status_code == 413
    assert "The form was refused" in too_big.text
    assert api.json() == {"detail": "Not Found"}  # the API keeps its JSON
