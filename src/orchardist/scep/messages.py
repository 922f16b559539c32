"""SCEP pkiMessages (RFC 8894 §3): read a request's outer layer, build a CertRep.

Hand-written because no maintained Python SCEP library exists; the CMS work itself is in
`orchardist.pki.cms`. A request is read in two steps so that a forged or undecryptable one
still gets a signed FAILURE reply carrying its transactionID and nonce (RFC 8894 §3.3.2):
`read_request` only parses (anything it cannot parse is a `ScepMessageError`, answered
400), and the service then verifies and decrypts.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import cms as asn1_cms
from asn1crypto import core
from cryptography import x509

from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority
from orchardist.pki.cms_quick import read_signed

# VeriSign arc used by every SCEP attribute (RFC 8894 §3.2.1)
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
OID_FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"
OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"  # noqa: S105 (an OID, not a password)

# RFC 8894 §3.2.1.5: senderNonce is 16 random bytes; we accept a little more or less
# from old clients but nothing absurd.
MAX_NONCE_BYTES = 64
MAX_TRANSACTION_ID_CHARS = 256


class MessageType(enum.IntEnum):
    CERT_REP = 3
    RENEWAL_REQ = 17
    UPDATE_REQ = 18  # draft-only; answered badRequest
    PKCS_REQ = 19
    CERT_POLL = 20  # "GetCertInitial" in the drafts iOS follows
    GET_CERT = 21
    GET_CRL = 22


class PkiStatus(enum.StrEnum):
    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"


class FailInfo(enum.StrEnum):
    BAD_ALG = "0"
    BAD_MESSAGE_CHECK = "1"
    BAD_REQUEST = "2"
    BAD_TIME = "3"
    BAD_CERT_ID = "4"


class ScepMessageError(ValueError):
    """The body is not a SCEP pkiMessage we can even reply to; str(err) says why."""


@dataclass(frozen=True)
class ScepRequest:
    """The outer layer of a request, parsed but not yet verified."""

    der: bytes
    message_type: int
    transaction_id: str
    sender_nonce: bytes
    digest: str  # the signer's digest algorithm name, e.g. "sha256"
    challenge_attribute: str | None  # some clients (macOS mdmclient) also sign it in here


def read_request(der: bytes) -> ScepRequest:
    """Parse a pkiMessage's SignedData and SCEP signed attributes, trusting nothing yet."""
    quick = read_signed(der)
    if quick is not None:  # the common shape, without asn1crypto's objects (see cms_quick)
        try:
            wanted = (
                OID_MESSAGE_TYPE,
                OID_TRANSACTION_ID,
                OID_SENDER_NONCE,
                OID_CHALLENGE_PASSWORD,
            )
            attributes = {
                oid: core.load(quick.attributes[oid]) for oid in wanted if oid in quick.attributes
            }
        except (ValueError, TypeError) as exc:
            raise ScepMessageError(f"a SCEP attribute is not DER: {exc}") from exc
        return _request(der, attributes, quick.digest)
    try:
        info = asn1_cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ScepMessageError("a pkiMessage must be CMS SignedData")
        signer_infos = info["content"]["signer_infos"]
        if len(signer_infos) == 0:
            raise ScepMessageError("the SignedData has no signer")
        attributes = _signed_attributes(signer_infos[0])
        digest = str(signer_infos[0]["digest_algorithm"]["algorithm"].native)
    except ScepMessageError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ScepMessageError(f"not DER CMS SignedData: {exc}") from exc
    return _request(der, attributes, digest)


def _request(der: bytes, attributes: dict[str, core.Asn1Value], digest: str) -> ScepRequest:
    return ScepRequest(
        der=der,
        message_type=_message_type(attributes),
        transaction_id=_transaction_id(attributes),
        sender_nonce=_sender_nonce(attributes),
        digest=digest,
        challenge_attribute=_optional_string(attributes, OID_CHALLENGE_PASSWORD),
    )


def build_cert_rep(
    ca: CertificateAuthority,
    request: ScepRequest,
    *,
    status: PkiStatus,
    digest: cms.DigestName,
    fail_info: FailInfo | None = None,
    fail_text: str | None = None,
    envelope: bytes = b"",
) -> bytes:
    """A CertRep signed by the CA. `envelope` is the encrypted certs-only SignedData for
    SUCCESS; FAILURE and PENDING carry none (RFC 8894 §3.3.2)."""
    attributes: list[tuple[str, bytes]] = [
        (OID_MESSAGE_TYPE, core.PrintableString(str(int(MessageType.CERT_REP))).dump()),
        (OID_PKI_STATUS, core.PrintableString(status.value).dump()),
        (OID_TRANSACTION_ID, core.PrintableString(request.transaction_id).dump()),
        (OID_SENDER_NONCE, core.OctetString(os.urandom(16)).dump()),
        (OID_RECIPIENT_NONCE, core.OctetString(request.sender_nonce).dump()),
    ]
    if fail_info is not None:
        attributes.append((OID_FAIL_INFO, core.PrintableString(fail_info.value).dump()))
    if fail_text:
        attributes.append((OID_FAIL_INFO_TEXT, core.UTF8String(fail_text).dump()))
    return cms.sign(envelope, ca.certificate, ca.key, digest=digest, signed_attributes=attributes)


def issued_envelope(
    certificates: Sequence[x509.Certificate],
    recipient: x509.Certificate,
    cipher: cms.ContentCipher,
) -> bytes:
    """The SUCCESS payload: a certs-only SignedData encrypted to the requester's signer."""
    return cms.encrypt(cms.certificates_only(certificates), [recipient], cipher=cipher)


def serial_from_issuer_and_serial(content: bytes) -> int:
    """The serial of a GetCert request's IssuerAndSerialNumber."""
    try:
        parsed = asn1_cms.IssuerAndSerialNumber.load(content, strict=True)
        return int(parsed["serial_number"].native)
    except (ValueError, TypeError, KeyError) as exc:
        raise ScepMessageError(f"not an IssuerAndSerialNumber: {exc}") from exc


def _signed_attributes(signer_info: asn1_cms.SignerInfo) -> dict[str, core.Asn1Value]:
    attributes: dict[str, core.Asn1Value] = {}
    signed = signer_info["signed_attrs"]
    if not signed:
        raise ScepMessageError("the signer has no signed attributes, so no SCEP attributes")
    for attribute in signed:
        values = attribute["values"]
        if len(values) == 1:
            attributes[attribute["type"].dotted] = values[0]
    return attributes


def _required(attributes: dict[str, core.Asn1Value], oid: str, name: str) -> core.Asn1Value:
    if oid not in attributes:
        raise ScepMessageError(f"the {name} attribute is missing")
    return attributes[oid]


def _string(value: core.Asn1Value, name: str) -> str:
    # Parsed lazily by asn1crypto: any decoding error surfaces here, as a reason. The type
    # is checked before `.native`, which would turn a constructed value of any depth into
    # Python objects (thousands of nested SEQUENCEs: a RecursionError, a 500).
    try:
        parsed = value.parsed if isinstance(value, core.Any) else value
        if not isinstance(parsed, core.AbstractString):
            raise TypeError(f"{type(parsed).__name__} instead")
        return str(parsed.native)
    except (ValueError, TypeError) as exc:
        raise ScepMessageError(f"the {name} attribute is not a string: {exc}") from exc


def _message_type(attributes: dict[str, core.Asn1Value]) -> int:
    raw = _string(_required(attributes, OID_MESSAGE_TYPE, "messageType"), "messageType")
    if not raw.isdigit():
        raise ScepMessageError(f"messageType {raw!r} is not a number")
    return int(raw)


def _transaction_id(attributes: dict[str, core.Asn1Value]) -> str:
    raw = _string(_required(attributes, OID_TRANSACTION_ID, "transactionID"), "transactionID")
    if not raw or len(raw) > MAX_TRANSACTION_ID_CHARS or not raw.isprintable():
        raise ScepMessageError("the transactionID is empty, too long or not printable")
    return raw


def _sender_nonce(attributes: dict[str, core.Asn1Value]) -> bytes:
    value = _required(attributes, OID_SENDER_NONCE, "senderNonce")
    try:
        parsed = value.parsed if isinstance(value, core.Any) else value
        if not isinstance(parsed, core.OctetString):  # before `.native`: see _string
            raise TypeError(f"{type(parsed).__name__} instead")
        nonce = parsed.native
    except (ValueError, TypeError) as exc:
        raise ScepMessageError(f"the senderNonce is not an OCTET STRING: {exc}") from exc
    if not isinstance(nonce, bytes) or not 0 < len(nonce) <= MAX_NONCE_BYTES:
        raise ScepMessageError("the senderNonce must be 1 to 64 bytes")
    return nonce


def _optional_string(attributes: dict[str, core.Asn1Value], oid: str) -> str | None:
    if oid not in attributes:
        return None
    try:
        return _string(attributes[oid], "challengePassword")
    except ScepMessageError:
        return None
