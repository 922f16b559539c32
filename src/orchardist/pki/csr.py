"""Certificate signing requests (RFC 2986): read one as a client sent it, and decide
whether the CA would certify it.

A CSR is parsed and checked once (`read_csr`, or `check_csr` for one already parsed), and
what issuance needs travels on as a `CheckedCsr`.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from orchardist.pki.der import in_der_order, sequence, tlv

IssuablePublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class CsrError(ValueError):
    """A CSR we refuse to sign; str(err) says why."""


@dataclass(frozen=True)
class CheckedCsr:
    """A CSR whose signature verified and whose key the CA accepts: what issuance uses."""

    subject: x509.Name
    public_key: IssuablePublicKey
    san: x509.SubjectAlternativeName | None  # the only requested extension we honour
    challenge: str | None  # the PKCS#9 challengePassword attribute


def read_csr(der: bytes) -> CheckedCsr:
    """Parse and check a DER CSR; CsrError says why it is refused."""
    try:
        csr = x509.load_der_x509_csr(der)
    except x509.InvalidVersion as exc:
        raise CsrError(f"not a version 1 CSR: {exc}") from exc
    except ValueError:
        # micromdm/scep (Go) writes challengePassword after extensionRequest; a short
        # challenge (a static one of 16 characters, say) then encodes shorter, so the
        # attributes SET is not in DER order (X.690 §11.6) and `cryptography` refuses it
        # (InvalidSetOrdering). Such a CSR is still well signed: read it the slow way.
        return _read_unordered(der)
    return check_csr(csr)


def check_csr(csr: x509.CertificateSigningRequest) -> CheckedCsr:
    """What the CA needs from a parsed CSR; CsrError when it would not certify it."""
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"the CSR's key or signature cannot be read: {exc}") from exc
    if not valid:
        raise CsrError("the CSR's signature does not verify with its own public key")
    return _checked(csr)


def _read_unordered(der: bytes) -> CheckedCsr:
    """The attributes re-encoded in DER order for parsing only; the signature is verified
    over the CertificationRequestInfo exactly as the client signed it."""
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        info = request["certification_request_info"]
        attributes = [attribute.dump() for attribute in info["attributes"]]
        ordered = sequence(
            info["version"].dump(),
            info["subject"].dump(),
            info["subject_pk_info"].dump(),
            tlv(0xA0, b"".join(in_der_order(attributes))),  # [0] IMPLICIT SET OF
        )
        signed = info.dump()
        csr = x509.load_der_x509_csr(
            sequence(ordered, request["signature_algorithm"].dump(), request["signature"].dump())
        )
    except (ValueError, TypeError, KeyError, x509.InvalidVersion) as exc:
        raise CsrError(f"not a DER CSR: {exc}") from exc
    _verify_signature(csr, signed)
    return _checked(csr)


def _verify_signature(csr: x509.CertificateSigningRequest, signed: bytes) -> None:
    try:
        key = csr.public_key()
        scheme = csr.signature_algorithm_parameters
        digest = csr.signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"the CSR's key or signature cannot be read: {exc}") from exc
    try:
        if isinstance(key, rsa.RSAPublicKey) and isinstance(scheme, padding.PKCS1v15 | padding.PSS):
            key.verify(csr.signature, signed, scheme, digest or hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(scheme, ec.ECDSA):
            key.verify(csr.signature, signed, scheme)
        else:
            raise CsrError("only RSA and EC keys with RSA or ECDSA signatures can be certified")
    except InvalidSignature as exc:
        raise CsrError("the CSR's signature does not verify with its own public key") from exc


def _checked(csr: x509.CertificateSigningRequest) -> CheckedCsr:
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrError(f"the CSR's key cannot be read: {exc}") from exc
    if not isinstance(public_key, IssuablePublicKey):
        raise CsrError("only RSA and EC keys can be certified")
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
        raise CsrError(f"RSA keys need at least 2048 bits, this one has {public_key.key_size}")
    return CheckedCsr(csr.subject, public_key, _requested_san(csr), _challenge(csr))


def _requested_san(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    """The SubjectAltName from the CSR's extensionRequest; other requested extensions
    (key usage, basic constraints…) are ignored: the CA decides those."""
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # a malformed extensionRequest
        raise CsrError(f"the CSR's extension request is malformed: {exc}") from exc


def _challenge(csr: x509.CertificateSigningRequest) -> str | None:
    try:
        value = csr.attributes.get_attribute_for_oid(x509.oid.AttributeOID.CHALLENGE_PASSWORD)
    except x509.AttributeNotFound:
        return None
    except ValueError as exc:
        raise CsrError(f"the CSR's attributes are malformed: {exc}") from exc
    raw = value.value
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
