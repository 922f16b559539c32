"""The console's Enrollment page on the real app: invitations (sent through the inviter,
recorded as invitation.send without the link), the one-time link and the enrollment
profile, over-the-air sessions, and held SCEP requests that admins approve or reject
(scep.approve / scep.reject). Viewers read, forged and token-less POSTs change nothing,
and what users and devices named prints escaped."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from orchardist.audit import AuditQuery, Outcome
from orchardist.scep.client import make_csr
from orchardist.storage import OtaSession, ScepTransaction, ScepTransactionStatus
from tests.keys import rsa_key
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert("x")</script>'


async def _held(server: Server, transaction_id: str, name: str, index: int) -> None:
    csr = make_csr(rsa_key(index), name).public_bytes(serialization.Encoding.DER)
    await server.services.storage.save_transaction(ScepTransaction(
        transaction_id, ScepTransactionStatus.PENDING, csr, datetime.now(UTC)
    ))  # fmt: skip


async def _session(server: Server, user: str, phase: str, device: str | None = None) -> None:
    now = datetime.now(UTC)
    await server.services.storage.save_ota_session(OtaSession(
        hashlib.sha256(user.encode()).hexdigest(), user, ("staff", HOSTILE), phase, now,
        now + timedelta(minutes=30), device_id=device,
    ))  # fmt: skip


async def _post(client: httpx.AsyncClient, path: str, token: str, **fields: str) -> httpx.Response:
    return await client.post(path, data={"csrf_token": token, **fields})


async def _state(server: Server, transaction_id: str) -> ScepTransactionStatus | None:
    tx = await server.services.storage.get_transaction(transaction_id)
    return None if tx is None else tx.status


async def test_a_viewer_reads_everything_and_changes_nothing(server: Server) -> None:
    await _held(server, "tx-1", HOSTILE, 560)
    await _session(server, "alice", "enrolled", "UDID-ENR-1")
    await _session(server, "bob", "consented")
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        page = await client.get("/console/enrollment")
        forged = [
            await _post(client, "/console/enrollment/invitations", token, user="eve",
                        email="eve@example.com"),
            await _post(client, "/console/enrollment/link", token),
            await _post(client, "/console/enrollment/profile", token),
            await _post(client, "/console/enrollment/scep/approve", token, transaction_id="tx-1"),
        ]  # fmt: skip
    assert page.status_code == 200
    assert "tx-1" in page.text
    assert r"CN=\&lt;script\&gt;alert(\&#34;x\&#34;)\&lt;/script\&gt;" in page.text  # RFC 4514
    assert "<script>alert" not in page.text
    assert 'href="/console/devices/UDID-ENR-1"' in page.text
    assert re.search(r"<td>bob</td>\s*<td>staff, &lt;script&gt;", page.text)
    assert "Directory sign-in at <code>/enroll</code> is off" in page.text
    assert '<form method="post" action="/console/enrollment' not in page.text
    assert [answer.status_code for answer in forged] == [403] * 4
    assert await server.services.storage.list_invitations() == []
    assert await _state(server, "tx-1") == ScepTransactionStatus.PENDING
    denied = await server.services.audit.entries(AuditQuery(outcome=Outcome.DENIED))
    assert [e.action for e in reversed(denied)] == ["enrollment.invite"] * 3 + [
        "enrollment.approve"
    ]
    assert await server.services.audit.entries(AuditQuery(outcome=Outcome.OK)) == []


async def test_an_operator_invites_and_hands_out_links(server: Server) -> None:
    await _held(server, "tx-2", "held-device", 561)
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = await client.get("/console/enrollment")
        assert 'action="/console/enrollment/invitations"' in page.text
        assert "/console/enrollment/scep/approve" not in page.text  # admins only
        invited = await _post(client, "/console/enrollment/invitations", token,
                              user=HOSTILE, email="kim@example.com")  # fmt: skip
        nowhere = await _post(client, "/console/enrollment/invitations", token, user="kim")
        too_long = await _post(client, "/console/enrollment/invitations", token,
                               user="k" * 256, email="kim@example.com")  # fmt: skip
        linked = await _post(client, "/console/enrollment/link", token)
        profile = await _post(client, "/console/enrollment/profile", token)
        approve = await _post(client, "/console/enrollment/scep/approve", token,
                              transaction_id="tx-2")  # fmt: skip
        listed = await client.get("/console/enrollment")
    assert invited.status_code == 201
    link = re.search(r'class="secret">([^<]+)<', invited.text)
    assert link is not None
    assert "/enroll?invite=" in link[1]
    assert "email to kim@example.com: NOT sent: no email settings" in invited.text
    assert "<script>alert" not in invited.text + listed.text
    assert 'kim@example.com: <span class="error">no email settings</span>' in listed.text
    assert (nowhere.status_code, "e-mail address and/or an SMS number" in nowhere.text) == (
        422, True,
    )  # fmt: skip
    assert (too_long.status_code, "user: String should have at most 255" in too_long.text) == (
        422, True,
    )  # fmt: skip
    assert linked.status_code == 201
    assert "/mdm/enroll?token=" in linked.text
    assert profile.headers["content-type"] == "application/x-apple-aspen-config"
    assert "orchardist-enroll.mobileconfig" in profile.headers["content-disposition"]
    assert profile.content[:1] == b"\x30"  # CMS SignedData (DER)
    assert approve.status_code == 403
    assert await _state(server, "tx-2") == ScepTransactionStatus.PENDING
    (invitation,) = await server.services.storage.list_invitations()
    entries = await server.services.audit.entries(AuditQuery(actor="olga"))
    recorded = [(e.action, e.targets[0][:8] if e.targets else None, e.outcome)
                for e in reversed(entries)]  # fmt: skip
    assert recorded == [
        ("invitation.send", HOSTILE[:8], Outcome.OK),
        ("invitation.send", "kim", Outcome.FAILED),
        ("invitation.send", "kkkkkkkk", Outcome.FAILED),
        ("enrollment.link", None, Outcome.OK),
        ("enrollment.profile", None, Outcome.OK),
        ("enrollment.approve", "/console", Outcome.DENIED),
    ]
    sent = entries[-1]  # the oldest
    assert sent.detail == {"email": "kim@example.com", "sms": None,
                           "invitation_id": invitation.invitation_id,
                           "delivered": {"email": False}}  # fmt: skip
    assert link[1] not in repr(entries)  # the links are secrets: never recorded
    assert "/mdm/enroll?token=" not in repr(entries)


async def test_an_admin_approves_and_rejects_held_requests(server: Server) -> None:
    await _held(server, "tx-a", "device-a", 562)
    await _held(server, "tx-b", "device-b", 563)
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        page = await client.get("/console/enrollment")
        assert page.text.count('action="/console/enrollment/scep/approve"') == 2
        approved = await _post(client, "/console/enrollment/scep/approve", token,
                               transaction_id="tx-a")  # fmt: skip
        rejected = await _post(client, "/console/enrollment/scep/reject", token,
                               transaction_id="tx-b")  # fmt: skip
        again = await _post(client, "/console/enrollment/scep/approve", token,
                            transaction_id="tx-b")  # fmt: skip
        unknown = await _post(client, "/console/enrollment/scep/reject", token,
                              transaction_id="nope")  # fmt: skip
        no_token = await client.post("/console/enrollment/scep/approve",
                                     data={"transaction_id": "tx-b"})  # fmt: skip
        after = await client.get("/console/enrollment")
    assert approved.headers["location"] == "/console/enrollment?done=approved"
    assert rejected.headers["location"] == "/console/enrollment?done=rejected"
    assert (again.status_code, "is rejected, not pending" in again.text) == (409, True)
    assert (unknown.status_code, "No SCEP request with transactionID" in unknown.text) == (
        409, True,
    )  # fmt: skip
    assert no_token.status_code == 403
    assert "No requests are waiting." in after.text
    tx_a = await server.services.storage.get_transaction("tx-a")
    assert tx_a is not None
    assert tx_a.status == ScepTransactionStatus.ISSUED
    assert tx_a.certificate_serial is not None
    entries = await server.services.audit.entries(AuditQuery(actor="ann"))
    assert [(e.action, e.targets, e.outcome) for e in reversed(entries)] == [
        ("scep.approve", ("tx-a",), Outcome.OK),
        ("scep.reject", ("tx-b",), Outcome.OK),
        ("scep.approve", ("tx-b",), Outcome.FAILED),
        ("scep.reject", ("nope",), Outcome.FAILED),
    ]
    assert entries[-1].detail == {"serial": f"{tx_a.certificate_serial:x}"}
