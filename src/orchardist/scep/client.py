"""The requester's side of SCEP: build pkiMessages and read CertReps.

Used by the virtual device, the benchmark and the tests; it speaks only the wire format, so
it exercises the server the way a device does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from asn1crypto import cms as asn1_cms
from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7
from cryptography.x509.oid import NameOID

from orchardist.pki import cms
from orchardist.scep.messages import (
    OID_FAIL_INFO,
    OID_FAIL_INFO_TEXT,
    OID_MESSAGE_TYPE,
    OID_PKI_STATUS,
    OID_RECIPIENT_NONCE,
    OID_SENDER_NONCE,
    OID_TRANSACTION_ID,
    FailInfo,
    MessageType,
    PkiStatus,
)


def make_csr(
    key: rsa.RSAPrivateKey, common_name: str, challenge: str | None = None
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if challenge is not None:
        builder = builder.add_attribute(
            x509.oid.AttributeOID.CHALLENGE_PASSWORD, challenge.encode("utf-8")
        )
    return builder.sign(key, hashes.SHA256())


def self_signed_signer(key: rsa.RSAPrivateKey, subject: x509.Name) -> x509.Certificate:
    """The throw-away certificate a first request is signed with (RFC 8894 §2.3)."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def transaction_id_for(key: rsa.RSAPrivateKey) -> str:
    """The conventional transactionID: a hash of the requester's public key."""
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True)
class Requester:
    """Who signs a request, and to whom its envelope is encrypted."""

    signer_cert: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    recipient: x509.Certificate  # the CA, or the RA from GetCACert
    cipher: cms.ContentCipher = "aes256"
    digest: cms.DigestName = "sha256"


def pki_message(
    requester: Requester,
    message_type: MessageType,
    inner: bytes,
    transaction_id: str,
    sender_nonce: bytes | None = None,
) -> bytes:
    """A signed pkiMessage whose envelope holds `inner` (a CSR, IssuerAndSubject…)."""
    envelope = cms.encrypt(inner, [requester.recipient], cipher=requester.cipher)
    attributes = [
        (OID_MESSAGE_TYPE, core.PrintableString(str(int(message_type))).dump()),
        (OID_TRANSACTION_ID, core.PrintableString(transaction_id).dump()),
        (OID_SENDER_NONCE, core.OctetString(sender_nonce or os.urandom(16)).dump()),
    ]
    return cms.sign(
        envelope,
        requester.signer_cert,
        requester.signer_key,
        digest=requester.digest,
        signed_attributes=attributes,
    )


class IssuerAndSubject(core.Sequence):  # type: ignore[misc]
    """RFC 8894 §3.3.3; asn1crypto declares a schema as the class attribute `_fields`."""

    _fields: ClassVar[list[tuple[str, type]]] = [
        ("issuer", asn1_x509.Name),
        ("subject", asn1_x509.Name),
    ]


def issuer_and_subject(issuer: x509.Name, subject: x509.Name) -> bytes:
    """The CertPoll (GetCertInitial) body."""
    value = IssuerAndSubject(
        {
            "issuer": asn1_x509.Name.load(issuer.public_bytes()),
            "subject": asn1_x509.Name.load(subject.public_bytes()),
        }
    )
    dumped: bytes = value.dump()
    return dumped


def issuer_and_serial(issuer: x509.Name, serial: int) -> bytes:
    """The GetCert body."""
    value = asn1_cms.IssuerAndSerialNumber(
        {"issuer": asn1_x509.Name.load(issuer.public_bytes()), "serial_number": serial}
    )
    dumped: bytes = value.dump()
    return dumped


@dataclass(frozen=True)
class CertRep:
    status: PkiStatus
    transaction_id: str
    recipient_nonce: bytes
    fail_info: FailInfo | None
    fail_text: str | None
    certificates: tuple[x509.Certificate, ...]
    signer: x509.Certificate


def read_cert_rep(der: bytes, requester: Requester, responder: x509.Certificate) -> CertRep:
    """Verify a CertRep came from `responder`, and decrypt the certificates of a SUCCESS."""
    signed = cms.verify(der)
    if signed.signer != responder:
        raise cms.CmsError("the CertRep is not signed by the CA/RA certificate")
    attrs = signed.signed_attributes
    if _string(attrs, OID_MESSAGE_TYPE) != str(int(MessageType.CERT_REP)):
        raise cms.CmsError("not a CertRep")
    try:
        status = PkiStatus(_string(attrs, OID_PKI_STATUS) or "missing")
        fail = _string(attrs, OID_FAIL_INFO)
        fail_info = FailInfo(fail) if fail is not None else None
    except ValueError as exc:
        raise cms.CmsError(f"a CertRep with an unknown pkiStatus or failInfo: {exc}") from exc
    certificates: Sequence[x509.Certificate] = ()
    if status == PkiStatus.SUCCESS:
        inner = cms.decrypt(signed.content, requester.signer_cert, requester.signer_key)
        certificates = pkcs7.load_der_pkcs7_certificates(inner.content)
    return CertRep(
        status=status,
        transaction_id=_string(attrs, OID_TRANSACTION_ID) or "",
        recipient_nonce=_octets(attrs, OID_RECIPIENT_NONCE),
        fail_info=fail_info,
        fail_text=_string(attrs, OID_FAIL_INFO_TEXT),
        certificates=tuple(certificates),
        signer=signed.signer,
    )


def _string(attrs: Mapping[str, tuple[bytes, ...]], oid: str) -> str | None:
    values = attrs.get(oid)
    if not values:
        return None
    return str(core.load(values[0]).native)


def _octets(attrs: Mapping[str, tuple[bytes, ...]], oid: str) -> bytes:
    values = attrs.get(oid)
    if not values:
        return b""
    nonce = core.load(values[0]).native
    return nonce if isinstance(nonce, bytes) else b""
