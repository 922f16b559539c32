"""The console's audit log on the real app: the entries GET /api/v1/audit answers, newest
first, filtered and paged by `before`; escaped; refused to an operator (and that refusal
itself in the log)."""

from __future__ import annotations

import re

import pytest

from orchardist.audit import Actor as AuditActor
from orchardist.audit import AuditQuery, Outcome
from orchardist.tokens import create_api_token
from tests.web.console import add_account, browser, page_as, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert("x")</script>'


def _ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="entry-(\d+)">', html)]


async def _record(server: Server, count: int) -> None:
    audit = server.services.audit
    for n in range(count):
        outcome = Outcome.FAILED if n % 3 == 0 else Outcome.OK
        reason = "no push token" if outcome == Outcome.FAILED else None
        actor = AuditActor.account(f"kim{n % 2}")
        await audit.record(actor, "device.push", [f"UDID-{n}"], outcome, reason=reason)


async def test_the_page_shows_what_the_api_answers(server: Server) -> None:
    await _record(server, 60)
    await add_account(server, "ada", "admin")
    token = await create_api_token(server.services.storage, "auditor", "admin")
    bearer = {"Authorization": f"Bearer {token}"}
    async with browser(server) as client:
        await signed_in(client, "ada")
        first = await client.get("/console/audit", params={"action": "device.push"})
        api = await server.http.get("/api/v1/audit", params={"action": "device.push", "limit": 50},
                                    headers=bearer)  # fmt: skip
        assert first.status_code == 200
        assert _ids(first.text) == [entry["id"] for entry in api.json()]
        assert _ids(first.text) == sorted(_ids(first.text), reverse=True)  # newest first
        older = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        second = await client.get(older)
        assert len(_ids(second.text)) == 10
        assert max(_ids(second.text)) < min(_ids(first.text))
        failed = await client.get(
            "/console/audit", params={"actor": "kim0", "outcome": "failed", "target": "UDID-6"}
        )
        assert len(_ids(failed.text)) == 1
        assert "no push token" in failed.text
        bad = await client.get("/console/audit", params={"outcome": "maybe"})
        assert (bad.status_code, "outcome: ok, denied or failed" in bad.text) == (422, True)
        bad = await client.get("/console/audit", params={"before": "-3"})
        assert bad.status_code == 422


async def test_entries_are_escaped(server: Server) -> None:
    await server.services.audit.record(AuditActor.account(HOSTILE), "device.push", [HOSTILE])
    page = (await page_as(server, "ada", "admin", "/console/audit")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


async def test_an_operator_is_refused(server: Server) -> None:
    page = await page_as(server, "olga", "operator", "/console/audit")
    assert page.status_code == 403
    assert 'id="entry-' not in page.text
    entries = await server.services.audit.entries(AuditQuery(actor="olga"))
    assert [(e.action, e.outcome) for e in entries] == [("audit.read", Outcome.DENIED)]
