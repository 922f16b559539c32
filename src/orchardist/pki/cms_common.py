"""What the CMS modules share: the error type, algorithm names, and the ASN.1 boundary.

asn1crypto parses lazily, so a malformed field only fails when it is first touched, with
whatever exception the parser raises there. Every read of untrusted CMS therefore happens
inside `malformed_as_cms_error`, which turns those exceptions into `CmsError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes


class CmsError(ValueError):
    """Malformed, unverifiable or undecryptable CMS. str(err) is a short human reason."""


ContentCipher = Literal["aes128", "aes256", "des3", "des"]  # all in CBC mode
DigestName = Literal["sha1", "sha256", "sha384", "sha512"]

_DIGESTS: dict[DigestName, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# What asn1crypto and cryptography's loaders raise on bytes that are not what they claim.
# UnsupportedAlgorithm: a certificate naming a key type cryptography does not know;
# InvalidVersion: one whose version field is corrupt (neither is a ValueError);
# RecursionError: asn1crypto recurses once per level of nesting, and a message can nest
# thousands (the readers avoid it where they can; this is the net).
MALFORMED = (
    RecursionError,
    x509.InvalidVersion,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    UnsupportedAlgorithm,
)
_MAX_REASON = 160


def digest_of(name: DigestName) -> hashes.HashAlgorithm:
    """The cryptography hash object for a digest name."""
    return _DIGESTS[name]()


def digest_name(asn1_name: object) -> DigestName:
    """Our name for an asn1crypto digest algorithm name ("sha256"…), or CmsError."""
    for name in _DIGESTS:
        if asn1_name == name:
            return name
    raise CmsError(f"unsupported digest algorithm {asn1_name}")


@contextmanager
def malformed_as_cms_error(what: str) -> Iterator[None]:
    """Re-raise parser exceptions from the block as CmsError("malformed <what>: …")."""
    try:
        yield
    except CmsError:
        raise
    except MALFORMED as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CmsError(f"malformed {what}: {reason[:_MAX_REASON]}") from exc


def load_content(der: bytes, expected: Literal["signed_data", "enveloped_data"]) -> Any:
    """The `content` of a DER ContentInfo of the expected type (RFC 5652 §3)."""
    label = {"signed_data": "SignedData", "enveloped_data": "EnvelopedData"}[expected]
    if not isinstance(der, bytes | bytearray | memoryview):
        raise CmsError(f"expected DER CMS {label}, got {type(der).__name__}")
    with malformed_as_cms_error("CMS ContentInfo"):
        info = asn1_cms.ContentInfo.load(bytes(der), strict=True)
        content_type = info["content_type"].native
        if content_type != expected:
            raise CmsError(f"expected CMS {label}, got {content_type}")
        return info["content"]


def asn1_name(name: x509.Name) -> asn1_x509.Name:
    return asn1_x509.Name.load(name.public_bytes())


def issuer_and_serial(cert: x509.Certificate) -> asn1_cms.IssuerAndSerialNumber:
    """The RFC 5652 §10.2.4 identifier of a certificate."""
    return asn1_cms.IssuerAndSerialNumber(
        {"issuer": asn1_name(cert.issuer), "serial_number": cert.serial_number}
    )


def subject_key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's SKI extension, or the RFC 5280 §4.2.1.2 method-1 value when it
    has none (as OpenSSL does), so an SKI-addressed message still finds its certificate."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


# A distinguished name is a few hundred bytes (RFC 5280's upper bounds give each attribute
# 64 to 200 characters); 8 KiB leaves room for any real one.
MAX_NORMALISED_NAME_BYTES = 8192


def identifies(identifier: Any, cert: x509.Certificate) -> bool:
    """Whether a SignerIdentifier/RecipientIdentifier (RFC 5652 §5.3, §6.2.1) names `cert`.

    Names are compared the RFC 5280 §7.1 way (asn1crypto's Name equality normalises case
    and spaces), not byte for byte, because some clients re-encode the issuer name."""
    if identifier.name == "issuer_and_serial_number":
        wanted = identifier.chosen
        if wanted["serial_number"].native != cert.serial_number:
            return False
        issuer, named = cert.issuer.public_bytes(), wanted["issuer"].dump()
        # Byte equality first: it is the usual case, and asn1crypto's normalising
        # comparison costs about half a millisecond on every SCEP request — and seconds
        # for a name of hundreds of kilobytes (a fuzzed message): names that long are
        # compared byte for byte only.
        if named == issuer:
            return True
        if max(len(named), len(issuer)) > MAX_NORMALISED_NAME_BYTES:
            return False
        return bool(wanted["issuer"] == asn1_name(cert.issuer))
    if identifier.name == "subject_key_identifier":
        return bool(identifier.chosen.native == subject_key_identifier(cert))
    return False
