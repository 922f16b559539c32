"""A Go SCEP client's CSR (challengePassword after extensionRequest, a short static
challenge: attributes not in DER order) enrolls through `/scep` like any other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from orchardist.config import load_settings
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep import client
from orchardist.scep.approvals import ScepApprovals
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Issuer
from orchardist.scep.messages import FailInfo, MessageType, PkiStatus
from orchardist.scep.service import ScepService
from orchardist.storage.memory import MemoryStorage
from orchardist.web.app import create_app
from orchardist.wiring import Services
from tests.keys import rsa_key
from tests.pki.go_csr import go_style_csr

pytestmark = pytest.mark.anyio
STATIC = "go-static-16char"  # 16 characters: a short static challenge


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("Go CSR Test CA", "Orchardist tests"))


@pytest.fixture
async def http(tmp_path: Path, ca: CertificateAuthority) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(tmp_path)
    storage = MemoryStorage()
    clock = lambda: datetime.now(UTC)  # noqa: E731
    challenges = ChallengeVerifier(
        storage, ttl=timedelta(hours=1), clock=clock, static_challenge=STATIC
    )
    scep = ScepService(
        ca,
        storage,
        storage,
        challenges,
        validity_days=30,
        max_clock_skew=timedelta(hours=1),
        clock=clock,
    )
    issuer = Issuer(ca, storage, validity_days=30, clock=clock)
    services = Services(settings, storage, ca, challenges, scep, ScepApprovals(storage, issuer))
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://mdm.test") as http:
        yield http


async def _enrol(
    http: httpx.AsyncClient, ca: CertificateAuthority, csr: bytes, key_index: int
) -> client.CertRep:
    key = rsa_key(key_index)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "go-device")])
    requester = client.Requester(client.self_signed_signer(key, subject), key, ca.certificate)
    message = client.pki_message(
        requester, MessageType.PKCS_REQ, csr, client.transaction_id_for(key)
    )
    response = await http.post(
        "/scep?operation=PKIOperation",
        content=message,
        headers={"content-type": "application/x-pki-message"},
    )
    assert response.status_code == 200
    return client.read_cert_rep(response.content, requester, ca.certificate)


async def test_short_challenge_after_extension_request_enrolls(
    http: httpx.AsyncClient, ca: CertificateAuthority
) -> None:
    key = rsa_key(41)
    csr = go_style_csr(key, "go-device", STATIC, "go-device.example.test")
    rep = await _enrol(http, ca, csr, 41)
    assert rep.status == PkiStatus.SUCCESS, rep.fail_text
    (cert,) = rep.certificates
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.rfc4514_string() == "CN=go-device"
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["go-device.example.test"]


async def test_a_wrong_short_challenge_is_still_refused(
    http: httpx.AsyncClient, ca: CertificateAuthority
) -> None:
    csr = go_style_csr(rsa_key(42), "go-device", "not-the-static", "go.example.test")
    rep = await _enrol(http, ca, csr, 42)
    assert (rep.status, rep.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert rep.fail_text is not None
    assert "challenge" in rep.fail_text


async def test_a_tampered_go_csr_is_refused(
    http: httpx.AsyncClient, ca: CertificateAuthority
) -> None:
    csr = bytearray(go_style_csr(rsa_key(43), "go-device", STATIC, "go.example.test"))
    csr[csr.index(b"go.example.test")] ^= 0x01  # inside the signed bytes
    rep = await _enrol(http, ca, bytes(csr), 43)
    assert (rep.status, rep.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert rep.fail_text is not None
    assert "signature" in rep.fail_text
