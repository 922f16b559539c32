"""The enrollment site and the OTA POSTs refuse what they must, clearly, leaving nothing
half-enrolled, and a retry works: wrong password, unknown user, LDAP injection, a declined
enrollment, a reused or expired session or challenge, attributes signed by an untrusted
CA, a phase-3 POST signed by a certificate we did not issue or for another device."""

from __future__ import annotations

import dataclasses
import hashlib
import plistlib
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from orchardist.config import DirectorySettings
from orchardist.pki import cms
from orchardist.pki.ca import generate_ca
from orchardist.scep.client import make_csr
from orchardist.scep.issuance import record_of
from tests.directory.slapd import (
    BASE,
    PASSWORDS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    running_slapd,
)
from tests.enroll.test_ota_fleet import device_ca
from tests.keys import rsa_key
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio
UDID = "0000OTA-TEST-UDID"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
async def site(slapd: Slapd, tmp_path: Path) -> AsyncIterator[tuple[Server, Path, Path]]:
    ca_file, ca_key = device_ca(tmp_path)
    directory = DirectorySettings(
        url=slapd.url, base_dn=BASE, bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD
    )  # type: ignore[arg-type]
    async with running("sqlite", tmp_path, directory=directory,
                       ota_device_anchor_files=[ca_file]) as server:  # fmt: skip
        yield server, ca_file, ca_key


async def _sign_in(server: Server, user: str, password: str) -> tuple[int, str]:
    page = await server.http.post("/enroll", data={"user": user, "password": password})
    return page.status_code, page.text


async def _session(server: Server) -> str:
    status, text = await _sign_in(server, "alice", PASSWORDS["alice"])
    found = re.search(r'name=session value="([^"]+)"', text)
    assert status == 200
    assert found is not None
    return found.group(1)


async def _challenge(server: Server, session: str) -> str:
    reply = await server.http.get("/enroll/profile", params={"session": session})
    assert reply.status_code == 200
    service = plistlib.loads(cms.verify(reply.content).content)
    assert service["PayloadType"] == "Profile Service"
    assert service["PayloadContent"]["DeviceAttributes"][0] == "UDID"
    challenge: str = service["PayloadContent"]["Challenge"]
    return challenge


def _apple_cert(
    ca_file: Path, ca_key: Path, key: rsa.RSAPrivateKey, cn: str = UDID
) -> x509.Certificate:
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    signing_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    assert isinstance(signing_key, rsa.RSAPrivateKey)
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(signing_key, hashes.SHA256())
    )  # fmt: skip


async def _post(server: Server, challenge: str, cert: x509.Certificate,
                key: rsa.RSAPrivateKey, udid: str = UDID) -> tuple[int, str]:  # fmt: skip
    body = cms.sign(plistlib.dumps({"UDID": udid, "CHALLENGE": challenge}), cert, key)
    reply = await server.http.post("/enroll/ota", content=body)
    return reply.status_code, reply.text


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("alice", "wrong"),
        ("nobody", "x"),
        ("*)(uid=*", PASSWORDS["alice"]),
        ("alice", ""),
        ("carol", PASSWORDS["carol"]),  # locked
    ],
)
async def test_sign_in_refusals_then_a_retry_works(
    site: tuple[Server, Path, Path], user: str, password: str
) -> None:
    server = site[0]
    status, text = await _sign_in(server, user, password)
    assert status == 401
    assert any(
        reason in text
        for reason in ("unknown user or wrong password", "enter your user name", "locked")
    )
    assert await server.services.storage.list_enrollments() == []
    assert (await _sign_in(server, "alice", PASSWORDS["alice"]))[0] == 200
    assert "Review and install" in (await _sign_in(server, "alice", PASSWORDS["alice"]))[1]


async def test_declining_leaves_nothing(site: tuple[Server, Path, Path]) -> None:
    server = site[0]
    session = await _session(server)
    declined = await server.http.post("/enroll/decline", data={"session": session})
    assert "Nothing was installed" in declined.text
    refused = await server.http.get("/enroll/profile", params={"session": session})
    assert (refused.status_code, "sign in again" in refused.text) == (403, True)
    digest = hashlib.sha256(session.encode()).hexdigest()
    assert await server.services.storage.ota_session(token_sha256=digest) is None


async def test_the_profile_service_link_works_once(site: tuple[Server, Path, Path]) -> None:
    server = site[0]
    session = await _session(server)
    await _challenge(server, session)
    again = await server.http.get("/enroll/profile", params={"session": session})
    assert again.status_code == 403


async def test_device_post_refusals(site: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, ca_file, ca_key = site
    key = rsa_key(201)
    challenge = await _challenge(server, await _session(server))
    # Signed under a CA we do not trust: refused, and the challenge still works after.
    foreign_ca, foreign_key = generate_ca("Not Apple", "x")
    stranger = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, UDID)]))
        .issuer_name(foreign_ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(foreign_key, hashes.SHA256())
    )  # fmt: skip
    status, text = await _post(server, challenge, stranger, key)
    assert (status, "not signed by a device certificate we trust" in text) == (403, True)
    assert (await server.http.post("/enroll/ota", content=b"junk")).status_code == 403

    apple = _apple_cert(ca_file, ca_key, key)
    status, _ = await _post(server, challenge, apple, key)
    assert status == 200  # phase 2
    status, text = await _post(server, challenge, apple, key)
    assert (status, "used already" in text) == (403, True)  # a replayed phase 2

    # Phase 3 signed by an identity we issued to another device: refused.
    other = server.ca.issue_client_certificate(make_csr(key, "SOMEONE-ELSE"), validity_days=1,
                                               now=datetime.now(UTC))  # fmt: skip
    await server.services.storage.add_certificate(record_of(other))
    status, text = await _post(server, challenge, other, key, udid="SOMEONE-ELSE")
    assert status == 403
    mine = server.ca.issue_client_certificate(make_csr(key, UDID), validity_days=1,
                                              now=datetime.now(UTC))  # fmt: skip
    await server.services.storage.add_certificate(record_of(mine))
    status, _ = await _post(server, challenge, mine, key)
    assert status == 200  # phase 3 of the right device
    assert (await _post(server, challenge, mine, key))[0] == 403  # and only once


async def test_an_expired_challenge_is_refused(site: tuple[Server, Path, Path]) -> None:
    server, ca_file, ca_key = site
    key = rsa_key(202)
    challenge = await _challenge(server, await _session(server))
    store = server.services.storage
    session = await store.ota_session(
        challenge_sha256=hashlib.sha256(challenge.encode()).hexdigest()
    )
    assert session is not None
    await store.save_ota_session(dataclasses.replace(session, expires_at=datetime.now(UTC)))
    status, text = await _post(server, challenge, _apple_cert(ca_file, ca_key, key), key)
    assert (status, "expired" in text) == (403, True)


async def test_an_expired_or_used_invitation_is_refused(site: tuple[Server, Path, Path]) -> None:
    server = site[0]
    ota = server.services.ota
    assert ota is not None
    link, _ = await ota.invitation_link("alice", timedelta(seconds=-1))
    token = link.rsplit("=", 1)[1]
    expired = await server.http.get("/enroll", params={"invite": token})
    assert (expired.status_code, "expired" in expired.text) == (403, True)
    link, _ = await ota.invitation_link("alice", timedelta(hours=1))
    token = link.rsplit("=", 1)[1]
    review = await server.http.get("/enroll", params={"invite": token})
    assert "Review and install" in review.text
    await server.http.post("/enroll/decline", data={"session": token})
    used = await server.http.get("/enroll", params={"invite": token})
    assert used.status_code == 403
