"""With manual approval, an identity renewal's one-time challenge (mdm/renewal.py) is held
like any other request, and its certificate still renews the old one once approved: the
held transaction keeps the serial its challenge names (mdm/binding.py `renews` relies on
it to keep the device's queue). On every storage backend and in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography import x509

from orchardist.pki.ca import CertificateAuthority
from orchardist.scep import client
from orchardist.scep.approvals import ScepApprovals
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Issuer
from orchardist.scep.messages import MessageType, PkiStatus
from orchardist.scep.service import ScepService
from orchardist.storage import Storage
from orchardist.storage.memory import MemoryStorage
from tests.keys import rsa_key
from tests.scep.conftest import Clock, make_bench, scep_service

pytestmark = pytest.mark.anyio
UDID = "UDID-HELD-RENEWAL"


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, storage: Storage) -> Storage:
    return storage if request.param == "sql" else MemoryStorage()


@dataclass
class Held:
    """A SCEP service holding every challenged request, and its administrator's side."""

    ca: CertificateAuthority
    store: Storage
    challenges: ChallengeVerifier
    service: ScepService
    approvals: ScepApprovals

    def request(self, challenge: str, index: int, txid: str) -> tuple[bytes, bytes]:
        """A PKCSReq with this challenge for a new key, and the CertPoll that follows it."""
        bench = make_bench(self.ca)  # only for building the messages
        requester = bench.requester(rsa_key(index), UDID)
        body = client.issuer_and_subject(self.ca.certificate.subject, requester.signer_cert.subject)
        poll = client.pki_message(requester, MessageType.CERT_POLL, body, txid)
        return bench.pkcs_req(requester, challenge, UDID, txid), poll

    async def approved(self, challenge: str, index: int, txid: str) -> x509.Certificate:
        request, poll = self.request(challenge, index, txid)
        assert (await self.service.pki_operation(request)).status == PkiStatus.PENDING
        cert = await self.approvals.approve(txid)
        reply = await self.service.pki_operation(poll)
        assert (reply.status, reply.certificate_serial) == (PkiStatus.SUCCESS, cert.serial_number)
        return cert


def _held(ca: CertificateAuthority, store: Storage) -> Held:
    clock = Clock()
    challenges = ChallengeVerifier(store, ttl=timedelta(hours=1), clock=clock)
    service = scep_service(ca, store, challenges, clock, manual_approval=True)
    approvals = ScepApprovals(store, Issuer(ca, store, validity_days=30, clock=clock))
    return Held(ca, store, challenges, service, approvals)


async def test_a_held_renewal_is_still_a_renewal_once_approved(
    ca: CertificateAuthority, store: Storage
) -> None:
    held = _held(ca, store)
    first, _ = await held.challenges.issue(device_id=UDID)
    old = await held.approved(first, 60, "tx-held-enrol")

    renewal, _ = await held.challenges.issue(device_id=UDID, renewal_of=old.serial_number)
    request, _ = held.request(renewal, 61, "tx-held-renew")
    assert (await held.service.pki_operation(request)).status == PkiStatus.PENDING
    # Resent while it waits: the same answer, its challenge spent the first time.
    assert (await held.service.pki_operation(request)).status == PkiStatus.PENDING
    (waiting,) = await held.approvals.pending()
    assert (waiting.device_id, waiting.renewal_of) == (UDID, old.serial_number)

    new = await held.approvals.approve("tx-held-renew")
    record = await store.get_certificate(new.serial_number)
    assert record is not None
    assert (record.device_id, record.renewal_of) == (UDID, old.serial_number)
    issued = await store.get_transaction("tx-held-renew")
    assert issued is not None
    assert (issued.certificate_serial, issued.renewal_of) == (new.serial_number, old.serial_number)
    reply = await held.service.pki_operation(request)  # a resend now gets the certificate
    assert (reply.status, reply.certificate_serial) == (PkiStatus.SUCCESS, new.serial_number)


async def test_a_held_plain_request_renews_nothing(
    ca: CertificateAuthority, store: Storage
) -> None:
    """The first enrollment's challenge, minted for the UDID alone, is no renewal after
    approval either (a device re-enrolled afresh starts a new enrollment)."""
    held = _held(ca, store)
    challenge, _ = await held.challenges.issue(device_id=UDID)
    cert = await held.approved(challenge, 62, "tx-held-plain")
    record = await store.get_certificate(cert.serial_number)
    assert record is not None
    assert (record.device_id, record.renewal_of) == (UDID, None)
