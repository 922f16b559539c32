"""The console's Push certificate page on the real app: its status for every role; for
admins a CSR whose key stays on the server, and the import of Apple's certificate with the
checks of `orchardist pushcert import` — bad PEM, a key that does not match, a topic other
than enrolled devices use without the confirmation: each a 4xx page saying what to do,
nothing stored, a failed pushcert.import entry. Private keys are never shown."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.audit import AuditQuery, Outcome
from orchardist.pki.store import PkiFiles
from orchardist.push.stand_in import stand_in_identity
from tests.keys import rsa_key
from tests.push.test_certificate import TOPIC, push_certificate
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
ENROLLED_TOPIC = "com.apple.mgmt.t"  # what tests.web.mdm_server's devices enroll with


def _files(server: Server) -> PkiFiles:
    return server.services.pki_files()


def _cert_pem(key: rsa.RSAPrivateKey, topic: str = TOPIC) -> bytes:
    return push_certificate(key, topic=topic).public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


async def _import(
    client: httpx.AsyncClient, token: str, cert: bytes, key: bytes | None = None, **fields: str
) -> httpx.Response:
    files = {"certificate": ("MDM_Certificate.pem", cert, "application/x-pem-file")}
    if key is not None:
        files["key"] = ("push.key", key, "application/x-pem-file")
    return await client.post("/console/pushcert/import", data={"csrf_token": token, **fields},
                             files=files)  # fmt: skip


async def _imports(server: Server) -> list[tuple[tuple[str, ...], Outcome, dict[str, object]]]:
    entries = await server.services.audit.entries(AuditQuery(action="pushcert.import"))
    return [(e.targets, e.outcome, dict(e.detail)) for e in reversed(entries)]


async def test_viewers_and_operators_read_and_may_not_change_it(server: Server) -> None:
    await add_account(server, "vera", "viewer")
    await add_account(server, "olga", "operator")
    answers = []
    for name in ("vera", "olga"):
        async with browser(server) as client:
            token = await signed_in(client, name)
            page = await client.get("/console/pushcert")
            assert "No push certificate yet" in page.text
            assert "/console/pushcert/import" not in page.text
            assert "Download CSR" not in page.text
            answers += [
                await client.post("/console/pushcert/csr", data={"csrf_token": token}),
                await _import(client, token, _cert_pem(rsa_key(570)), _key_pem(rsa_key(570))),
            ]
    assert [a.status_code for a in answers] == [403] * 4
    assert "cannot manage the push certificate: that needs admin" in answers[-1].text
    files = _files(server)
    assert not files.has_push()
    assert not files.push_request_key.exists()
    denied = await server.services.audit.entries(AuditQuery(outcome=Outcome.DENIED))
    assert [(e.actor, e.action) for e in reversed(denied)] == [
        ("vera", "pushcert.manage"), ("vera", "pushcert.manage"),
        ("olga", "pushcert.manage"), ("olga", "pushcert.manage"),
    ]  # fmt: skip


async def test_an_admin_imports_the_certificate_for_the_console_csr(server: Server) -> None:
    await add_account(server, "ann", "admin")
    files = _files(server)
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        first = await client.post("/console/pushcert/csr", data={"csrf_token": token})
        again = await client.post("/console/pushcert/csr", data={"csrf_token": token})
        waiting = await client.get("/console/pushcert")
        csr = x509.load_pem_x509_csr(first.content)
        pending = files.read_key(files.push_request_key)
        assert isinstance(pending, rsa.RSAPrivateKey)
        assert oct(files.push_request_key.stat().st_mode & 0o777) == "0o600"
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in files.push_request_key.read_bytes()
        imported = await _import(client, token, _cert_pem(pending))  # the key stays put
        page = await client.get(imported.headers["location"])
    assert first.headers["content-type"] == "application/pkcs10"
    assert "orchardist-push.csr" in first.headers["content-disposition"]
    assert csr.public_key() == x509.load_pem_x509_csr(again.content).public_key()
    assert csr.public_key() == pending.public_key()
    assert "one is waiting for its certificate" in waiting.text
    assert imported.headers["location"] == "/console/pushcert?done=imported&stranded=0"
    assert not files.push_request_key.exists()  # it became push.key
    stored_key = files.read_key(files.push_key)
    assert stored_key.public_key() == pending.public_key()
    assert TOPIC in page.text
    assert "UID=com.apple.mgmt.External" in page.text  # the subject
    assert '<td id="days-left">364</td>' in page.text
    assert "restart the server" in page.text  # new profiles still carry the placeholder topic
    for text in (first.text, again.text, waiting.text, page.text):
        assert "PRIVATE KEY" not in text
    entries = await server.services.audit.entries(AuditQuery(action="pushcert.csr"))
    assert [e.detail for e in reversed(entries)] == [{"new_request": True}, {"new_request": False}]
    ((targets, outcome, detail),) = await _imports(server)
    assert (targets, outcome, detail["force"]) == ((TOPIC,), Outcome.OK, False)
    assert str(detail["not_after"]).startswith(str(datetime.now(UTC).year + 1))


async def test_bad_imports_are_refused_and_change_nothing(server: Server) -> None:
    device = await server.device("UDID-PUSH-1", 571)
    await server.enroll(device)  # enrolled with ENROLLED_TOPIC
    await add_account(server, "ann", "admin")
    key, other = rsa_key(572), rsa_key(573)
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        garbage = await _import(client, token, b"not a certificate", _key_pem(key))
        mismatch = await _import(client, token, _cert_pem(key), _key_pem(other))
        no_key = await _import(client, token, _cert_pem(key))
        moved = await _import(client, token, _cert_pem(key), _key_pem(key))
        no_csrf = await client.post("/console/pushcert/import", files={
            "certificate": ("c.pem", _cert_pem(key)), "key": ("k.pem", _key_pem(key))})  # fmt: skip
        assert not _files(server).has_push()
        forced = await _import(client, token, _cert_pem(key), _key_pem(key), replace_topic="yes")
    assert (garbage.status_code, "The certificate is not PEM" in garbage.text) == (422, True)
    assert "does not belong to this certificate" in mismatch.text
    assert (no_key.status_code, "Give the private key (PEM)" in no_key.text) == (422, True)
    assert moved.status_code == 409
    assert f"1 enrolled device(s) use topic {ENROLLED_TOPIC}" in moved.text
    assert "Renew the existing certificate" in moved.text
    assert no_csrf.status_code == 403
    assert forced.status_code == 303
    assert _files(server).has_push()
    recorded = [(targets, outcome, detail["force"]) for targets, outcome, detail in
                await _imports(server)]  # fmt: skip
    assert recorded == [((), Outcome.FAILED, False)] * 4 + [((TOPIC,), Outcome.OK, True)]
    entries = await server.services.audit.entries(AuditQuery(action="pushcert.import"))
    assert "PRIVATE KEY" not in repr(entries)


async def test_a_stand_in_and_a_hostile_topic_are_shown_for_what_they_are(
    server: Server,
) -> None:
    hostile = 'com.apple.mgmt.<script>alert("x")</script>'
    made = stand_in_identity(datetime.now(UTC), topic=hostile, ca_key=rsa_key(120),
                             key=rsa_key(121))  # fmt: skip
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        cert = made.certificate.public_bytes(serialization.Encoding.PEM)
        imported = await _import(client, token, cert, _key_pem(made.key))
        page = await client.get("/console/pushcert")
    assert imported.status_code == 303
    assert "a stand-in</span> for the local APNs peer" in page.text
    assert "<script>alert" not in page.text
    assert "com.apple.mgmt.&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
