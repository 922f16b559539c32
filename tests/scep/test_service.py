"""The SCEP service, message by message, through the wire format only."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep import client
from orchardist.scep.messages import (
    FailInfo,
    MessageType,
    PkiStatus,
    ScepMessageError,
    read_request,
)
from orchardist.storage import CertificateStatus, ScepTransaction, ScepTransactionStatus
from tests.captures import capture
from tests.keys import rsa_key
from tests.scep.conftest import ScepBench, make_bench

pytestmark = pytest.mark.anyio


async def test_capabilities_advertise_what_ios_and_rfc8894_need(bench: ScepBench) -> None:
    caps = bench.service.capabilities().split()
    for cap in ("POSTPKIOperation", "SHA-1", "SHA-256", "AES", "DES3", "SCEPStandard", "Renewal"):
        assert cap in caps


async def test_get_ca_cert_is_the_ca_in_der(bench: ScepBench, ca: CertificateAuthority) -> None:
    body, content_type = bench.service.ca_certificates()
    assert content_type == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(body) == ca.certificate


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3"])
@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
async def test_pkcsreq_is_answered_in_the_request_algorithms(
    bench: ScepBench, ca: CertificateAuthority, cipher: str, digest: str
) -> None:
    key = rsa_key(2)
    requester = bench.requester(key, "device-1", cipher=cipher, digest=digest)
    challenge, _ = await bench.challenges.issue()
    reply = await bench.service.pki_operation(bench.pkcs_req(requester, challenge, "device-1"))

    signed = cms.verify(reply.body, trusted=[ca.certificate])
    assert signed.digest == digest
    assert cms.decrypt(signed.content, requester.signer_cert, key).cipher == cipher
    rep = client.read_cert_rep(reply.body, requester, ca.certificate)
    assert rep.status == PkiStatus.SUCCESS
    (cert,) = rep.certificates
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.rfc4514_string() == "CN=device-1"
    assert cert.public_key() == key.public_key()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.serial_number.bit_length() == 127
    record = bench.storage.certificates[cert.serial_number]
    assert record.status == CertificateStatus.VALID
    assert record.not_after == cert.not_valid_after_utc


async def test_reply_echoes_transaction_and_nonce(
    bench: ScepBench, ca: CertificateAuthority
) -> None:
    requester = bench.requester(rsa_key(2), "nonce")
    challenge, _ = await bench.challenges.issue()
    csr = client.make_csr(requester.signer_key, "nonce", challenge)
    der = client.pki_message(
        requester, MessageType.PKCS_REQ, csr.public_bytes(Encoding.DER), "tx-42", b"n" * 16
    )
    rep = client.read_cert_rep(
        (await bench.service.pki_operation(der)).body, requester, ca.certificate
    )
    assert (rep.transaction_id, rep.recipient_nonce) == ("tx-42", b"n" * 16)


@pytest.mark.parametrize("case", ["wrong", "missing", "reused", "expired"])
async def test_bad_challenges_get_a_signed_bad_request(bench: ScepBench, case: str) -> None:
    challenge, _ = await bench.challenges.issue()
    if case == "reused":
        first = await bench.enrol(bench.requester(rsa_key(3), "a"), challenge, "a")
        assert first.status == PkiStatus.SUCCESS
    if case == "expired":
        bench.clock.now += timedelta(hours=2)
    presented = {"wrong": "not-the-challenge", "missing": None}.get(case, challenge)
    requester = bench.requester(rsa_key(4), "b")
    reply = await bench.service.pki_operation(bench.pkcs_req(requester, presented, "b"))
    rep = client.read_cert_rep(reply.body, requester, bench.ca.certificate)
    assert rep.status == PkiStatus.FAILURE
    assert rep.fail_info == FailInfo.BAD_REQUEST
    assert "challenge" in (rep.fail_text or "")
    assert rep.certificates == ()


async def test_static_challenge_works_every_time(ca: CertificateAuthority) -> None:
    bench = make_bench(ca, static="shared-secret")
    for index in (5, 6):
        rep = await bench.enrol(bench.requester(rsa_key(index), "s"), "shared-secret", "s")
        assert rep.status == PkiStatus.SUCCESS


async def test_tampered_signature_is_bad_message_check(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "t")
    challenge, _ = await bench.challenges.issue()
    der = bytearray(bench.pkcs_req(requester, challenge, "t"))
    der[-5] ^= 0xFF  # the signature is the last field of the SignerInfo
    reply = await bench.service.pki_operation(bytes(der))
    rep = client.read_cert_rep(reply.body, requester, bench.ca.certificate)
    assert (rep.status, rep.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_MESSAGE_CHECK)
    # The challenge was not spent on a forged request.
    assert (await bench.enrol(requester, challenge, "t")).status == PkiStatus.SUCCESS


async def test_envelope_for_another_ca_is_bad_message_check(bench: ScepBench) -> None:
    stranger = make_bench(CertificateAuthority(*generate_ca("Another CA", "Elsewhere")))
    requester = stranger.requester(rsa_key(2), "x")
    challenge, _ = await bench.challenges.issue()
    reply = await bench.service.pki_operation(bench.pkcs_req(requester, challenge, "x"))
    assert reply.fail_info == FailInfo.BAD_MESSAGE_CHECK


async def test_signing_time_far_off_is_bad_time(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "late")
    challenge, _ = await bench.challenges.issue()
    der = bench.pkcs_req(requester, challenge, "late")
    bench.clock.now += timedelta(days=3)
    assert (await bench.service.pki_operation(der)).fail_info == FailInfo.BAD_TIME


async def test_renewal_signed_by_issued_certificate(bench: ScepBench) -> None:
    key = rsa_key(2)
    challenge, _ = await bench.challenges.issue()
    (old,) = (await bench.enrol(bench.requester(key, "r"), challenge, "r")).certificates
    renewer = bench.requester(key, "r", signer_cert=old)
    new_key = rsa_key(7)
    csr = client.make_csr(new_key, "r")
    der = client.pki_message(
        renewer, MessageType.RENEWAL_REQ, csr.public_bytes(Encoding.DER), "renew-1"
    )
    rep = client.read_cert_rep(
        (await bench.service.pki_operation(der)).body, renewer, bench.ca.certificate
    )
    assert rep.status == PkiStatus.SUCCESS
    (new,) = rep.certificates
    assert new.public_key() == new_key.public_key()
    assert new.serial_number != old.serial_number


@pytest.mark.parametrize("case", ["self-signed", "revoked", "other-subject"])
async def test_renewal_refusals(bench: ScepBench, case: str) -> None:
    key = rsa_key(2)
    challenge, _ = await bench.challenges.issue()
    (old,) = (await bench.enrol(bench.requester(key, "r"), challenge, "r")).certificates
    renewer = bench.requester(key, "r", signer_cert=None if case == "self-signed" else old)
    if case == "revoked":
        await bench.storage.revoke_certificate(old.serial_number, bench.clock.now)
    csr = client.make_csr(key, "someone-else" if case == "other-subject" else "r")
    der = client.pki_message(renewer, MessageType.RENEWAL_REQ, csr.public_bytes(Encoding.DER), "rn")
    expected = FailInfo.BAD_REQUEST if case == "other-subject" else FailInfo.BAD_MESSAGE_CHECK
    assert (await bench.service.pki_operation(der)).fail_info == expected


async def test_retransmitted_request_gets_the_same_certificate(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "again")
    challenge, _ = await bench.challenges.issue()
    der = bench.pkcs_req(requester, challenge, "again")
    first = await bench.service.pki_operation(der)
    second = await bench.service.pki_operation(der)
    assert first.certificate_serial is not None
    assert second.certificate_serial == first.certificate_serial
    assert len(bench.storage.certificates) == 1


async def test_transaction_id_reused_for_another_csr_is_refused(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "one")
    for cn, expected in (("one", PkiStatus.SUCCESS), ("two", PkiStatus.FAILURE)):
        challenge, _ = await bench.challenges.issue()
        reply = await bench.service.pki_operation(bench.pkcs_req(requester, challenge, cn, "same"))
        assert reply.status == expected


async def test_cert_poll(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "poll")
    challenge, _ = await bench.challenges.issue()
    issued = await bench.service.pki_operation(bench.pkcs_req(requester, challenge, "poll", "p1"))
    body = client.issuer_and_subject(bench.ca.certificate.subject, requester.signer_cert.subject)
    poll = await bench.service.pki_operation(
        client.pki_message(requester, MessageType.CERT_POLL, body, "p1")
    )
    assert poll.status == PkiStatus.SUCCESS
    assert poll.certificate_serial == issued.certificate_serial
    unknown = await bench.service.pki_operation(
        client.pki_message(requester, MessageType.CERT_POLL, body, "never-seen")
    )
    assert unknown.fail_info == FailInfo.BAD_CERT_ID


async def test_cert_poll_of_pending_request_stays_pending(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "wait")
    await bench.storage.save_transaction(
        ScepTransaction("pend", ScepTransactionStatus.PENDING, b"csr", bench.clock.now)
    )
    body = client.issuer_and_subject(bench.ca.certificate.subject, requester.signer_cert.subject)
    reply = await bench.service.pki_operation(
        client.pki_message(requester, MessageType.CERT_POLL, body, "pend")
    )
    rep = client.read_cert_rep(reply.body, requester, bench.ca.certificate)
    assert (rep.status, rep.certificates) == (PkiStatus.PENDING, ())


async def test_get_cert(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "get")
    challenge, _ = await bench.challenges.issue()
    (cert,) = (await bench.enrol(requester, challenge, "get")).certificates
    issuer = bench.ca.certificate.subject
    for serial, expected in ((cert.serial_number, PkiStatus.SUCCESS), (12345, PkiStatus.FAILURE)):
        body = client.issuer_and_serial(issuer, serial)
        der = client.pki_message(requester, MessageType.GET_CERT, body, f"get-{serial}")
        rep = client.read_cert_rep(
            (await bench.service.pki_operation(der)).body, requester, bench.ca.certificate
        )
        assert rep.status == expected
    assert rep.fail_info == FailInfo.BAD_CERT_ID


async def test_get_cert_with_garbage_body_is_bad_request(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "g")
    der = client.pki_message(requester, MessageType.GET_CERT, b"\x30\x03\x02\x01", "g")
    assert (await bench.service.pki_operation(der)).fail_info == FailInfo.BAD_REQUEST


async def test_unsupported_message_type_is_bad_request(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "crl")
    der = client.pki_message(requester, MessageType.GET_CRL, b"\x30\x00", "crl")
    assert (await bench.service.pki_operation(der)).fail_info == FailInfo.BAD_REQUEST


async def test_garbage_csr_is_bad_request(bench: ScepBench) -> None:
    requester = bench.requester(rsa_key(2), "csr")
    der = client.pki_message(requester, MessageType.PKCS_REQ, b"not a csr", "csr")
    assert (await bench.service.pki_operation(der)).fail_info == FailInfo.BAD_REQUEST


@pytest.mark.parametrize(
    "body", [b"", b"garbage", b"\x30\x80", b"\x30\x03\x02\x01\x01", bytes(range(256)) * 4]
)
async def test_unparsable_bodies_raise_message_error(bench: ScepBench, body: bytes) -> None:
    with pytest.raises(ScepMessageError):
        await bench.service.pki_operation(body)


async def test_signed_data_without_scep_attributes_is_message_error(
    bench: ScepBench, ca: CertificateAuthority
) -> None:
    plain = cms.sign(b"hello", ca.certificate, ca.key)
    with pytest.raises(ScepMessageError, match="messageType"):
        await bench.service.pki_operation(plain)


async def test_registration_authority_signs_and_decrypts(ca: CertificateAuthority) -> None:
    ra_key = rsa_key(8)
    csr = client.make_csr(ra_key, "Orchardist RA")
    ra_cert = ca.issue_client_certificate(csr, validity_days=30, now=make_bench(ca).clock.now)
    bench = make_bench(ca, responder=CertificateAuthority(ra_cert, ra_key))
    body, content_type = bench.service.ca_certificates()
    assert content_type == "application/x-x509-ca-ra-cert"
    assert set(client.pkcs7.load_der_pkcs7_certificates(body)) == {ra_cert, ca.certificate}
    challenge, _ = await bench.challenges.issue()
    rep = await bench.enrol(bench.requester(rsa_key(2), "via-ra"), challenge, "via-ra")
    assert rep.signer == ra_cert
    assert rep.status == PkiStatus.SUCCESS
    rep.certificates[0].verify_directly_issued_by(ca.certificate)


async def test_real_macos_mdmclient_request_is_read_and_refused_cleanly(
    bench: ScepBench,
) -> None:
    """A 2017 macOS PKCSReq sent to another CA (NDES): parsed, its signature verified, then
    refused with a signed CertRep (stale signingTime; envelope not for us) — never a crash."""
    der = capture("cmdmnt_commandment/testdata/mdmclient-PKIOperation.der")
    request = read_request(der)
    assert request.message_type == MessageType.PKCS_REQ
    assert request.digest == "sha512"
    assert request.sender_nonce == bytes.fromhex("fac5e2eda5d97d64")  # 8 bytes, not 16
    assert request.challenge_attribute == "03DD5575C1694064"
    assert request.transaction_id.endswith("2E35CEDF66E73D7B")
    today = await bench.service.pki_operation(der)
    assert (today.status, today.fail_info) == (PkiStatus.FAILURE, FailInfo.BAD_TIME)
    assert today.transaction_id == request.transaction_id
    signing_time = cms.verify(der).signing_time
    assert signing_time is not None
    assert signing_time.year == 2017
    bench.clock.now = signing_time
    then = await bench.service.pki_operation(der)
    assert then.fail_info == FailInfo.BAD_MESSAGE_CHECK
    assert "decrypt" in (then.reason or "")


async def test_renewals_with_the_same_key_and_transaction_id(bench: ScepBench) -> None:
    """micromdm's scepclient derives the transactionID from the key, so renewing with the
    same key reuses it: each renewal is new, and a resent renewal gets the same answer."""
    key = rsa_key(2)
    txid = client.transaction_id_for(key)
    challenge, _ = await bench.challenges.issue()
    first = await bench.service.pki_operation(
        bench.pkcs_req(bench.requester(key, "same"), challenge, "same", txid)
    )
    serials = [first.certificate_serial]
    csr = client.make_csr(key, "same").public_bytes(Encoding.DER)
    for _ in range(2):
        signer = bench.storage.certificates[serials[-1] or 0].der
        renewer = bench.requester(key, "same", signer_cert=x509.load_der_x509_certificate(signer))
        der = client.pki_message(renewer, MessageType.RENEWAL_REQ, csr, txid)
        renewed = await bench.service.pki_operation(der)
        resent = await bench.service.pki_operation(der)
        assert renewed.status == PkiStatus.SUCCESS
        assert resent.certificate_serial == renewed.certificate_serial
        serials.append(renewed.certificate_serial)
    assert len(set(serials)) == 3


async def test_mutated_requests_never_escape_as_crashes(bench: ScepBench) -> None:
    """Every single-byte corruption of a real request is either refused as unparsable or
    answered with a CertRep: nothing else may escape (the web layer would make it a 500)."""
    requester = bench.requester(rsa_key(2), "fuzz")
    challenge, _ = await bench.challenges.issue()
    der = bench.pkcs_req(requester, challenge, "fuzz")

    outcomes: set[str] = set()
    for seed in range(1000):
        rng = random.Random(seed)
        mutated = bytearray(der)
        position = rng.randrange(len(mutated))
        mutated[position] = rng.choice([0x00, 0xFF, mutated[position] ^ 0x01, 0x80])
        try:
            reply = await bench.service.pki_operation(bytes(mutated))
        except ScepMessageError:
            outcomes.add("refused")
        else:
            outcomes.add(reply.status.name)
    assert "refused" in outcomes
    assert "FAILURE" in outcomes


async def test_mutated_csrs_get_a_certrep(bench: ScepBench) -> None:
    """The same inside the envelope: a corrupt CSR is a signed badRequest, never a crash."""
    requester = bench.requester(rsa_key(2), "inner")
    csr = bytearray(client.make_csr(requester.signer_key, "inner", "x").public_bytes(Encoding.DER))
    fail_infos = set()
    for seed in range(300):
        rng = random.Random(seed)
        mutated = bytearray(csr)
        position = rng.randrange(len(mutated))
        mutated[position] = rng.choice([0x00, 0xFF, mutated[position] ^ 0x01, 0x80])
        der = client.pki_message(requester, MessageType.PKCS_REQ, bytes(mutated), f"m{seed}")
        fail_infos.add((await bench.service.pki_operation(der)).fail_info)
    assert fail_infos == {FailInfo.BAD_REQUEST}
