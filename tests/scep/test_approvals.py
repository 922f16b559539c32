"""Manual approval: PENDING until an administrator decides, the answer comes by polling."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki.ca import CertificateAuthority
from orchardist.scep import client
from orchardist.scep.approvals import NotPendingError
from orchardist.scep.messages import FailInfo, MessageType, PkiStatus
from tests.keys import rsa_key
from tests.scep.conftest import ScepBench, make_bench

pytestmark = pytest.mark.anyio


@pytest.fixture
def held(ca: CertificateAuthority) -> ScepBench:
    return make_bench(ca, manual_approval=True)


async def _request_and_poll(bench: ScepBench, txid: str) -> tuple[client.Requester, bytes, bytes]:
    requester = bench.requester(rsa_key(50), "held")
    challenge, _ = await bench.challenges.issue()
    request = bench.pkcs_req(requester, challenge, "held", txid)
    body = client.issuer_and_subject(bench.ca.certificate.subject, requester.signer_cert.subject)
    poll = client.pki_message(requester, MessageType.CERT_POLL, body, txid)
    return requester, request, poll


async def test_request_waits_then_approval_delivers_at_the_next_poll(held: ScepBench) -> None:
    requester, request, poll = await _request_and_poll(held, "wait-1")
    assert (await held.service.pki_operation(request)).status == PkiStatus.PENDING
    assert (await held.service.pki_operation(poll)).status == PkiStatus.PENDING
    # A client that resends its PKCSReq instead of polling is told the same, though its
    # one-time challenge is spent.
    assert (await held.service.pki_operation(request)).status == PkiStatus.PENDING
    assert [tx.transaction_id for tx in await held.approvals.pending()] == ["wait-1"]

    cert = await held.approvals.approve("wait-1")
    rep = client.read_cert_rep(
        (await held.service.pki_operation(poll)).body, requester, held.ca.certificate
    )
    assert rep.status == PkiStatus.SUCCESS
    assert rep.certificates == (cert,)
    assert await held.approvals.pending() == []


async def test_rejection_is_a_failure_at_the_next_poll(held: ScepBench) -> None:
    _, request, poll = await _request_and_poll(held, "wait-2")
    await held.service.pki_operation(request)
    await held.approvals.reject("wait-2")
    reply = await held.service.pki_operation(poll)
    assert (reply.status, reply.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_REQUEST)
    assert "rejected" in (reply.reason or "")


async def test_only_pending_requests_can_be_decided(held: ScepBench) -> None:
    with pytest.raises(NotPendingError, match="no SCEP request"):
        await held.approvals.approve("never-seen")
    _, request, _ = await _request_and_poll(held, "wait-3")
    await held.service.pki_operation(request)
    await held.approvals.approve("wait-3")
    with pytest.raises(NotPendingError, match="issued"):
        await held.approvals.reject("wait-3")


async def test_a_wrong_challenge_is_refused_before_any_wait(held: ScepBench) -> None:
    requester = held.requester(rsa_key(50), "held")
    reply = await held.service.pki_operation(held.pkcs_req(requester, "wrong", "held"))
    assert reply.fail_info == FailInfo.BAD_REQUEST
    assert await held.approvals.pending() == []


async def test_renewals_need_no_approval(held: ScepBench) -> None:
    key = rsa_key(50)
    _, request, _ = await _request_and_poll(held, "wait-4")
    await held.service.pki_operation(request)
    old = await held.approvals.approve("wait-4")
    renewer = held.requester(key, "held", signer_cert=old)
    csr = client.make_csr(key, "held").public_bytes(Encoding.DER)
    der = client.pki_message(renewer, MessageType.RENEWAL_REQ, csr, "renew-held")
    assert (await held.service.pki_operation(der)).status == PkiStatus.SUCCESS
