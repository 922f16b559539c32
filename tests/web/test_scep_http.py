"""`/scep` over HTTP, in process: operations, encodings, and refusals."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from structlog.testing import capture_logs

from orchardist.config import load_settings
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep import client
from orchardist.scep.approvals import ScepApprovals
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Issuer
from orchardist.scep.messages import PkiStatus
from orchardist.scep.service import ScepService
from orchardist.storage.memory import MemoryStorage
from orchardist.web.app import create_app
from orchardist.wiring import Services
from tests.keys import rsa_key

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("HTTP Test CA", "Orchardist tests"))


@pytest.fixture
async def services(tmp_path: Path, ca: CertificateAuthority) -> Services:
    settings = load_settings(tmp_path, scep_max_body_bytes=8192)
    storage = MemoryStorage()
    challenges = ChallengeVerifier(storage, ttl=timedelta(hours=1), clock=lambda: datetime.now(UTC))
    scep = ScepService(
        ca,
        storage,
        storage,
        challenges,
        validity_days=30,
        max_clock_skew=timedelta(hours=1),
        clock=lambda: datetime.now(UTC),
    )
    issuer = Issuer(ca, storage, validity_days=30, clock=lambda: datetime.now(UTC))
    return Services(settings, storage, ca, challenges, scep, ScepApprovals(storage, issuer))


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services.settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://mdm.test") as http:
        yield http


async def _pkcs_req(services: Services, cn: str) -> tuple[client.Requester, bytes]:
    key = rsa_key(20)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    requester = client.Requester(
        client.self_signed_signer(key, subject), key, services.ca.certificate
    )
    challenge, _ = await services.challenges.issue()
    csr = client.make_csr(key, cn, challenge).public_bytes(client.Encoding.DER)
    return requester, client.pki_message(requester, client.MessageType.PKCS_REQ, csr, cn)


async def test_get_ca_caps(http: httpx.AsyncClient) -> None:
    response = await http.get("/scep", params={"operation": "GetCACaps"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "SCEPStandard" in response.text.splitlines()


async def test_get_ca_cert(http: httpx.AsyncClient, ca: CertificateAuthority) -> None:
    response = await http.get("/scep", params={"operation": "GetCACert", "message": "any"})
    assert response.headers["content-type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(response.content) == ca.certificate


async def test_pkioperation_post(http: httpx.AsyncClient, services: Services) -> None:
    requester, der = await _pkcs_req(services, "post")
    response = await http.post(
        "/scep?operation=PKIOperation",
        content=der,
        headers={"content-type": "application/x-pki-message"},
    )
    assert response.headers["content-type"] == "application/x-pki-message"
    rep = client.read_cert_rep(response.content, requester, services.ca.certificate)
    assert rep.status == PkiStatus.SUCCESS


@pytest.mark.parametrize("alphabet", ["standard", "urlsafe", "unescaped-plus"])
async def test_pkioperation_get(http: httpx.AsyncClient, services: Services, alphabet: str) -> None:
    requester, der = await _pkcs_req(services, f"get-{alphabet}")
    if alphabet == "urlsafe":
        url = "/scep?operation=PKIOperation&message=" + base64.urlsafe_b64encode(der).decode()
    elif alphabet == "unescaped-plus":  # a client that forgot to URL-encode the base64
        url = "/scep?operation=PKIOperation&message=" + base64.b64encode(der).decode()
    else:
        url = httpx.URL(
            "/scep", params={"operation": "PKIOperation", "message": base64.b64encode(der).decode()}
        )
    response = await http.get(url)
    rep = client.read_cert_rep(response.content, requester, services.ca.certificate)
    assert rep.status == PkiStatus.SUCCESS


@pytest.mark.parametrize(
    ("request_args", "status", "reason"),
    [
        ({"method": "GET", "url": "/scep"}, 400, "unknown operation"),
        ({"method": "GET", "url": "/scep?operation=Nope"}, 400, "unknown operation"),
        (
            {"method": "POST", "url": "/scep?operation=PKIOperation", "content": b"junk"},
            400,
            "not a SCEP pkiMessage",
        ),
        (
            {"method": "POST", "url": "/scep?operation=PKIOperation", "content": b""},
            400,
            "not a SCEP pkiMessage",
        ),
        ({"method": "GET", "url": "/scep?operation=PKIOperation&message=%%%"}, 400, "not base64"),
        (
            {"method": "GET", "url": "/scep?operation=PKIOperation&message=" + "A" * 20000},
            413,
            "limit",
        ),
        (
            {"method": "POST", "url": "/scep?operation=PKIOperation", "content": b"x" * 9000},
            413,
            "limit",
        ),
    ],
)
async def test_refusals_are_4xx_with_a_reason(
    http: httpx.AsyncClient, request_args: dict[str, object], status: int, reason: str
) -> None:
    response = await http.request(**request_args)  # type: ignore[arg-type]
    assert response.status_code == status
    assert reason in response.text


async def test_chunked_oversized_body_is_refused(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    response = await http.post("/scep?operation=PKIOperation", content=chunks())
    assert response.status_code == 413


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.json()["status"] == "ok"


async def test_refusals_leave_a_log_line_without_secrets(
    http: httpx.AsyncClient, services: Services
) -> None:
    key = rsa_key(21)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "wrong")])
    requester = client.Requester(
        client.self_signed_signer(key, subject), key, services.ca.certificate
    )
    secret = "wrong-challenge-value"
    csr = client.make_csr(key, "wrong", secret).public_bytes(client.Encoding.DER)
    der = client.pki_message(requester, client.MessageType.PKCS_REQ, csr, "tx-wrong")
    with capture_logs() as logs:
        await http.post("/scep?operation=PKIOperation", content=der)
        await http.post("/scep?operation=PKIOperation", content=b"junk")
    failure = next(line for line in logs if line["event"] == "scep_failure")
    assert failure["transaction_id"] == "tx-wrong"
    assert failure["fail_info"] == "BAD_REQUEST"
    refused = next(line for line in logs if line["event"] == "scep_refused")
    assert "SignedData" in refused["reason"]
    assert secret not in repr(logs)
