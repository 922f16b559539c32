"""A one-time challenge minted for one UDID binds the certificate it yields to that UDID;
renewals and held requests keep the binding (mdm/binding.py relies on it)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from tests.keys import rsa_key
from tests.scep.conftest import ScepBench, make_bench

pytestmark = pytest.mark.anyio


async def _issue(bench: ScepBench, challenge: str, index: int) -> client.CertRep:
    rep = await bench.enrol(bench.requester(rsa_key(index), "UDID-A"), challenge, "UDID-A")
    assert rep.status == PkiStatus.SUCCESS
    return rep


async def test_a_device_challenge_binds_the_certificate(bench: ScepBench) -> None:
    challenge, _ = await bench.challenges.issue(device_id="UDID-A")
    (cert,) = (await _issue(bench, challenge, 30)).certificates
    record = await bench.storage.get_certificate(cert.serial_number)
    assert record is not None
    assert record.device_id == "UDID-A"
    assert record.renewal_of is None


async def test_a_plain_or_static_challenge_binds_nothing(bench: ScepBench) -> None:
    challenge, _ = await bench.challenges.issue()
    (plain,) = (await _issue(bench, challenge, 31)).certificates
    static = make_bench(bench.ca, static="shared")
    rep = await static.enrol(static.requester(rsa_key(32), "x"), "shared", "x")
    (shared,) = rep.certificates
    plain_record = await bench.storage.get_certificate(plain.serial_number)
    shared_record = await static.storage.get_certificate(shared.serial_number)
    assert plain_record is not None
    assert shared_record is not None
    assert (plain_record.device_id, shared_record.device_id) == (None, None)


async def test_a_renewal_keeps_the_device_and_names_what_it_renews(bench: ScepBench) -> None:
    challenge, _ = await bench.challenges.issue(device_id="UDID-A")
    key = rsa_key(33)
    (old,) = (await bench.enrol(bench.requester(key, "UDID-A"), challenge, "UDID-A")).certificates
    renewer = bench.requester(key, "UDID-A", signer_cert=old)
    csr = client.make_csr(rsa_key(34), "UDID-A")
    der = client.pki_message(
        renewer, MessageType.RENEWAL_REQ, csr.public_bytes(Encoding.DER), "renew-bound"
    )
    rep = client.read_cert_rep(
        (await bench.service.pki_operation(der)).body, renewer, bench.ca.certificate
    )
    (new,) = rep.certificates
    record = await bench.storage.get_certificate(new.serial_number)
    assert record is not None
    assert (record.device_id, record.renewal_of) == ("UDID-A", old.serial_number)


async def test_a_held_request_keeps_its_device_until_approved(bench: ScepBench) -> None:
    held = make_bench(bench.ca, manual_approval=True)
    challenge, _ = await held.challenges.issue(device_id="UDID-H")
    requester = held.requester(rsa_key(35), "UDID-H")
    reply = await held.service.pki_operation(held.pkcs_req(requester, challenge, "UDID-H", "h-1"))
    assert reply.status == PkiStatus.PENDING
    cert = await held.approvals.approve("h-1")
    record = await held.storage.get_certificate(cert.serial_number)
    assert record is not None
    assert record.device_id == "UDID-H"
