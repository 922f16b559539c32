"""A CA, an in-memory store and a SCEP service on a controllable clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep import client
from orchardist.scep.approvals import ScepApprovals
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Issuer
from orchardist.scep.messages import MessageType
from orchardist.scep.service import ScepService
from orchardist.storage import Storage
from orchardist.storage.memory import MemoryStorage
from tests.keys import rsa_key


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    cert, key = generate_ca("Test Device CA", "Orchardist tests", key_size=2048)
    return CertificateAuthority(cert, key)


@dataclass
class ScepBench:
    """The service under test with everything a test pokes at."""

    ca: CertificateAuthority
    storage: MemoryStorage
    clock: Clock
    challenges: ChallengeVerifier
    service: ScepService
    responder: CertificateAuthority
    approvals: ScepApprovals

    def requester(
        self,
        key: rsa.RSAPrivateKey,
        cn: str,
        *,
        cipher: str = "aes256",
        digest: str = "sha256",
        signer_cert: x509.Certificate | None = None,
    ) -> client.Requester:
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
        return client.Requester(
            signer_cert=signer_cert or client.self_signed_signer(key, subject),
            signer_key=key,
            recipient=self.responder.certificate,
            cipher=cipher,  # type: ignore[arg-type]
            digest=digest,  # type: ignore[arg-type]
        )

    def pkcs_req(
        self, requester: client.Requester, challenge: str | None, cn: str, txid: str | None = None
    ) -> bytes:
        csr = client.make_csr(requester.signer_key, cn, challenge)
        return client.pki_message(
            requester,
            MessageType.PKCS_REQ,
            csr.public_bytes(Encoding.DER),
            txid or client.transaction_id_for(requester.signer_key),
        )

    async def enrol(self, requester: client.Requester, challenge: str, cn: str) -> client.CertRep:
        reply = await self.service.pki_operation(self.pkcs_req(requester, challenge, cn))
        return client.read_cert_rep(reply.body, requester, self.responder.certificate)


def make_bench(
    ca: CertificateAuthority,
    *,
    static: str | None = None,
    responder: CertificateAuthority | None = None,
    manual_approval: bool = False,
) -> ScepBench:
    storage = MemoryStorage()
    clock = Clock()
    challenges = ChallengeVerifier(
        storage, ttl=timedelta(hours=1), clock=clock, static_challenge=static
    )
    service = scep_service(
        ca, storage, challenges, clock, responder=responder, manual_approval=manual_approval
    )
    approvals = ScepApprovals(storage, Issuer(ca, storage, validity_days=365, clock=clock))
    return ScepBench(ca, storage, clock, challenges, service, responder or ca, approvals)


def scep_service(
    ca: CertificateAuthority,
    storage: Storage,
    challenges: ChallengeVerifier,
    clock: Callable[[], datetime],
    *,
    responder: CertificateAuthority | None = None,
    manual_approval: bool = False,
) -> ScepService:
    """The service on any storage: a year's certificates, a day's clock skew."""
    return ScepService(
        ca,
        storage,
        storage,
        challenges,
        validity_days=365,
        max_clock_skew=timedelta(hours=24),
        clock=clock,
        responder=responder,
        manual_approval=manual_approval,
    )


@pytest.fixture
def bench(ca: CertificateAuthority) -> ScepBench:
    return make_bench(ca)


BenchFactory = Callable[..., ScepBench]


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa_key(1)
