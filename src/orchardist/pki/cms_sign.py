"""CMS SignedData (RFC 5652 §5): sign, verify, certs-only.

cryptography's PKCS7SignatureBuilder refuses SHA-1 (which SCEP clients still ask for) and
arbitrary signed attributes (which carry every SCEP field, RFC 8894 §3.2.1), and cryptography
has no SignedData verifier at all. So the SignedData structure is built and read here with
asn1crypto; cryptography does every hash, signature and certificate operation.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from asn1crypto import core, parser
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from orchardist.pki import der
from orchardist.pki.cms_common import (
    MALFORMED,
    CmsError,
    DigestName,
    digest_name,
    digest_of,
    identifies,
    load_content,
    malformed_as_cms_error,
)
from orchardist.pki.cms_quick import read_signed

OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
_SET_BY_SIGN = frozenset({OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_SIGNING_TIME})


@dataclass(frozen=True)
class SignedMessage:
    content: bytes  # the encapsulated content (or the detached content passed in)
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]  # all certs carried in the SignedData
    digest: DigestName  # digest algorithm of the signer
    signed_attributes: Mapping[str, tuple[bytes, ...]]  # dotted OID -> DER of each value
    signing_time: datetime | None  # tz-aware UTC, from the signingTime attribute


def sign(
    content: bytes,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    digest: DigestName = "sha256",
    detached: bool = False,
    signed_attributes: Sequence[tuple[str, bytes]] = (),
    extra_certs: Sequence[x509.Certificate] = (),
) -> bytes:
    """DER ContentInfo(SignedData) with one SignerInfo (issuerAndSerialNumber), signed
    attributes contentType(id-data), messageDigest, signingTime plus the given ones
    (dotted OID, DER of one value; repeating an OID gives that attribute several values);
    certificates = [cert, *extra_certs]. Bad arguments raise ValueError.

    Encoded with `der` rather than asn1crypto: this runs for every SCEP reply."""
    signer = _signer_parts(cert, key)
    algorithm = digest_of(digest)
    hasher = hashes.Hash(algorithm)
    hasher.update(content)
    attributes = _signed_attributes(hasher.finalize(), signed_attributes)
    # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31),
    # not as the [0] IMPLICIT field they travel in.
    signature = key.sign(attributes, padding.PKCS1v15(), algorithm)
    # RFC 5754 §2 / RFC 3370 §2.1: digest parameters absent; rsaEncryption with NULL.
    digest_algorithm = der.sequence(der.oid(_DIGEST_OIDS[digest]))
    signer_info = der.sequence(
        der.integer(1),  # §5.3: v1 for an issuerAndSerialNumber sid
        signer.issuer_and_serial,
        digest_algorithm,
        b"\xa0" + attributes[1:],  # [0] IMPLICIT SET OF Attribute
        der.sequence(der.oid(_RSA_ENCRYPTION), der.NULL),
        der.octet_string(signature),
    )
    encapsulated = [der.oid(_ID_DATA)]
    if not detached:
        encapsulated.append(der.explicit(0, der.octet_string(content)))
    certificates = der.set_of([signer.der, *(c.public_bytes(Encoding.DER) for c in extra_certs)])
    signed_data = der.sequence(
        der.integer(1),  # §5.1: no attribute certs, id-data content, v1 signers
        der.set_of([digest_algorithm]),
        der.sequence(*encapsulated),
        b"\xa0" + certificates[1:],  # [0] IMPLICIT CertificateSet
        der.set_of([signer_info]),
    )
    return der.sequence(der.oid(_ID_SIGNED_DATA), der.explicit(0, signed_data))


@dataclass(frozen=True)
class _SignerParts:
    issuer_and_serial: bytes
    der: bytes


@functools.lru_cache(maxsize=8)
def _signer_parts(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> _SignerParts:
    """What `sign` needs of its certificate, worked out once per certificate and key: every
    SCEP reply is signed by the same one (parsing its key to compare cost a tenth of a
    millisecond per reply). Keys compare by identity here, so a cache miss only repeats
    the check."""
    if cert.public_key() != key.public_key():
        raise ValueError("the signing key does not belong to the signing certificate")
    return _SignerParts(
        der.sequence(cert.issuer.public_bytes(), der.integer(cert.serial_number)),
        cert.public_bytes(Encoding.DER),
    )


_ID_DATA = "1.2.840.113549.1.7.1"
_ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_DIGEST_OIDS: Mapping[str, str] = {
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}


def _signed_attributes(message_digest: bytes, extra: Sequence[tuple[str, bytes]]) -> bytes:
    """The signed attributes as a DER SET OF Attribute."""
    # §5.3: an attribute type appears once, so values given under one OID are grouped.
    grouped: dict[str, list[bytes]] = {
        OID_CONTENT_TYPE: [der.oid(_ID_DATA)],
        OID_MESSAGE_DIGEST: [der.octet_string(message_digest)],
        OID_SIGNING_TIME: [der.time(datetime.now(UTC))],
    }
    for dotted, value in extra:
        if dotted in _SET_BY_SIGN:
            raise ValueError(f"sign() sets attribute {dotted} itself")
        if not _is_one_der_value(value):
            raise ValueError(f"the value of signed attribute {dotted} is not one DER value")
        grouped.setdefault(dotted, []).append(value)
    return der.set_of(
        der.sequence(der.oid(oid), der.set_of(values)) for oid, values in grouped.items()
    )


def _is_one_der_value(value: bytes) -> bool:
    try:
        return bool(value) and parser.peek(value) == len(value)
    except ValueError:  # truncated: the header promises more than there is
        return False


def certificates_only(certs: Sequence[x509.Certificate]) -> bytes:
    """Degenerate (certs-only) SignedData, DER (RFC 5652 §5.2, RFC 8894 §3.4)."""
    return pkcs7.serialize_certificates(list(certs), Encoding.DER)


def verify(
    der: bytes,
    *,
    detached_content: bytes | None = None,
    trusted: Sequence[x509.Certificate] | None = None,
    at: datetime | None = None,
) -> SignedMessage:
    """Verify the first SignerInfo of a ContentInfo(SignedData); see the module docstring
    of `orchardist.pki.cms` for the checks. Every failure is a CmsError."""
    quick = _verify_quick(der, detached_content, trusted, at)
    if quick is not None:
        return quick
    signed_data = load_content(der, "signed_data")
    with malformed_as_cms_error("SignedData"):
        parsed = _Parsed.read(signed_data, detached_content)
        signer = next((c for c in parsed.certificates if identifies(parsed.sid, c)), None)
    if signer is None:
        raise CmsError("the signer certificate is not in the SignedData")
    algorithm = digest_of(parsed.digest)
    if parsed.attributes_der is None:
        signed_bytes = parsed.content  # §5.4: no signed attributes, the content is signed
        signing_time = None
        attributes: dict[str, tuple[bytes, ...]] = {}
    else:
        signed_bytes = parsed.attributes_der
        with malformed_as_cms_error("signed attributes"):
            attributes, signing_time = _check_attributes(parsed, algorithm)
    # A certificate parses lazily: a corrupt public key or extension only shows here.
    with malformed_as_cms_error("signer certificate"):
        _check_signature(signer, parsed, algorithm, signed_bytes)
        if trusted is not None:
            _check_chain(signer, parsed.certificates, trusted, _utc(at))
            if signing_time is not None:
                _check_validity(signer, "signer", signing_time)
    return SignedMessage(
        content=parsed.content,
        signer=signer,
        certificates=parsed.certificates,
        digest=parsed.digest,
        signed_attributes=MappingProxyType(attributes),
        signing_time=signing_time,
    )


def _verify_quick(
    der: bytes,
    detached_content: bytes | None,
    trusted: Sequence[x509.Certificate] | None,
    at: datetime | None,
) -> SignedMessage | None:
    """The same checks on the common shape read by `cms_quick` (no asn1crypto objects); None
    for any other shape and on any failure, for the full path to refuse with its reason."""
    parts = read_signed(der)
    if parts is None:
        return None
    if parts.content is None:
        if detached_content is None:
            return None
        content = detached_content
    elif detached_content is not None and parts.content != detached_content:
        return None
    else:
        content = parts.content
    try:
        certificates = tuple(x509.load_der_x509_certificate(c) for c in parts.certificates)
        signer = next(
            (
                c
                for c in certificates
                if c.serial_number == parts.serial and c.issuer.public_bytes() == parts.issuer
            ),
            None,
        )
        if signer is None:
            return None
        public_key = signer.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            return None
        algorithm = digest_of(parts.digest)
        if not hmac.compare_digest(_hash(algorithm, content), parts.message_digest):
            return None
        public_key.verify(parts.signature, parts.signed_bytes, padding.PKCS1v15(), algorithm)
        if trusted is not None:
            _check_chain(signer, certificates, trusted, _utc(at))
            if parts.signing_time is not None:
                _check_validity(signer, "signer", parts.signing_time)
    except (CmsError, InvalidSignature, *MALFORMED):  # e.g. InvalidVersion: not a ValueError
        return None
    return SignedMessage(
        content=content,
        signer=signer,
        certificates=certificates,
        digest=parts.digest,
        signed_attributes=MappingProxyType({o: (v,) for o, v in parts.attributes.items()}),
        signing_time=parts.signing_time,
    )


def _hash(algorithm: hashes.HashAlgorithm, content: bytes) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(content)
    return hasher.finalize()


@dataclass(frozen=True)
class _Parsed:
    """The parts of a SignedData and its first SignerInfo that verification needs."""

    content: bytes
    content_type: str
    certificates: tuple[x509.Certificate, ...]
    sid: Any
    digest: DigestName
    signature_algorithm: Any
    attributes: Any  # CMSAttributes, or None
    attributes_der: bytes | None  # the attributes as the DER SET OF that was signed
    signature: bytes

    @classmethod
    def read(cls, signed_data: Any, detached_content: bytes | None) -> _Parsed:
        encap = signed_data["encap_content_info"]
        carried = None if isinstance(encap["content"], core.Void) else encap["content"].native
        if carried is None:
            if detached_content is None:
                raise CmsError("the SignedData is detached and no content was given")
            content = detached_content
        elif detached_content is not None and carried != detached_content:
            raise CmsError("the SignedData carries content other than the detached content")
        else:
            content = carried
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) == 0:
            raise CmsError("the SignedData has no signer")
        # One signer is all SCEP and MDM ever send; with more, the first must verify.
        signer_info = signer_infos[0]
        signed_attrs = signer_info["signed_attrs"]
        attributes_der = None
        if not isinstance(signed_attrs, core.Void):
            raw = signed_attrs.dump()
            # §5.4: the signature is over the attributes re-tagged as a universal SET OF
            # (0x31) instead of [0] IMPLICIT (0xA0); we keep the received octets otherwise.
            attributes_der = b"\x31" + raw[1:]
            # asn1crypto parses lazily: parse each attribute's type and value set here,
            # where a malformed one is a CmsError; not `.native`, which would also turn
            # an unknown attribute's value of any nesting into Python objects.
            for attribute in signed_attrs:
                _ = attribute["type"].dotted, len(attribute["values"])
        certificates = tuple(
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in _present(signed_data["certificates"])
            if choice.name == "certificate"  # attribute and other certificates are ignored
        )
        return cls(
            content=content,
            content_type=str(encap["content_type"].dotted),
            certificates=certificates,
            sid=signer_info["sid"],
            digest=digest_name(signer_info["digest_algorithm"]["algorithm"].native),
            signature_algorithm=signer_info["signature_algorithm"],
            attributes=None if attributes_der is None else signed_attrs,
            attributes_der=attributes_der,
            signature=bytes(signer_info["signature"].native),
        )


def _present(field: Any) -> Any:
    return () if isinstance(field, core.Void) else field


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    # A naive datetime is taken as UTC, the only zone this project stores.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _check_attributes(
    parsed: _Parsed, algorithm: hashes.HashAlgorithm
) -> tuple[dict[str, tuple[bytes, ...]], datetime | None]:
    attributes: dict[str, tuple[bytes, ...]] = {}
    for attribute in parsed.attributes:
        oid = attribute["type"].dotted
        if oid in attributes:  # §5.3: MUST NOT include multiple instances of a type
            raise CmsError(f"signed attribute {oid} appears twice")
        attributes[oid] = tuple(value.dump() for value in attribute["values"])
    # §5.3: with signed attributes present, contentType and messageDigest MUST be there,
    # and §11.1-11.3 allow each of these exactly one value.
    content_type = _single(parsed.attributes, OID_CONTENT_TYPE, "contentType")
    if content_type is None:
        raise CmsError("the contentType signed attribute is missing")
    if content_type.dotted != parsed.content_type:
        raise CmsError("the contentType attribute does not match the content")
    message_digest = _single(parsed.attributes, OID_MESSAGE_DIGEST, "messageDigest")
    if message_digest is None:
        raise CmsError("the messageDigest signed attribute is missing")
    hasher = hashes.Hash(algorithm)
    hasher.update(parsed.content)
    # The check some MDM servers skip: without it the signature says nothing about the
    # content, and any signed message can carry any body.
    if not hmac.compare_digest(hasher.finalize(), bytes(message_digest.native)):
        raise CmsError("message digest mismatch: the content is not what was signed")
    time_value = _single(parsed.attributes, OID_SIGNING_TIME, "signingTime")
    signing_time = None if time_value is None else time_value.native.astimezone(UTC)
    return attributes, signing_time


def _single(attributes: Any, oid: str, name: str) -> Any:
    for attribute in attributes:
        if attribute["type"].dotted == oid:
            values = attribute["values"]
            if len(values) != 1:
                raise CmsError(f"the {name} attribute must have exactly one value")
            return values[0]
    return None


def _check_signature(
    signer: x509.Certificate, parsed: _Parsed, algorithm: hashes.HashAlgorithm, data: bytes
) -> None:
    public_key = signer.public_key()
    with malformed_as_cms_error("signature algorithm"):
        kind = parsed.signature_algorithm.signature_algo
        name = parsed.signature_algorithm["algorithm"].native
        # rsaEncryption (RFC 3370 §3.2) names no hash; sha256WithRSAEncryption and
        # ecdsa-with-SHA256 do, and it must then be the signer's digest algorithm.
        if name not in ("rsassa_pkcs1v15", "rsassa_pss") and (
            parsed.signature_algorithm.hash_algo != parsed.digest
        ):
            raise CmsError("the signature and digest algorithms disagree")
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(parsed.signature, data, padding.PKCS1v15(), algorithm)
        elif kind == "rsassa_pss" and isinstance(public_key, rsa.RSAPublicKey):
            pss, pss_hash = _pss(parsed.signature_algorithm["parameters"])
            public_key.verify(parsed.signature, data, pss, pss_hash)
        elif kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            # Not RSA, but cheap: MDM devices enrolled through ACME sign with P-256/P-384.
            public_key.verify(parsed.signature, data, ec.ECDSA(algorithm))
        else:
            raise CmsError(f"unsupported signature algorithm {kind} for the signer's key")
    except InvalidSignature as exc:
        raise CmsError("the signature does not verify") from exc
    except UnsupportedAlgorithm as exc:
        raise CmsError(f"unsupported signature algorithm: {exc}") from exc


def _pss(parameters: Any) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    with malformed_as_cms_error("RSASSA-PSS parameters"):
        pss_hash = digest_of(digest_name(parameters["hash_algorithm"]["algorithm"].native))
        mgf = parameters["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            raise CmsError("unsupported RSASSA-PSS mask generation function")
        mgf_hash = digest_of(digest_name(mgf["parameters"]["algorithm"].native))
        salt = int(parameters["salt_length"].native)
        if parameters["trailer_field"].native != "trailer_field_bc":
            raise CmsError("unsupported RSASSA-PSS trailer field")
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt), pss_hash


def _check_chain(
    signer: x509.Certificate,
    carried: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    at: datetime,
) -> None:
    """The signer is issued by a trusted CA, directly or through one CA certificate the
    message carries, and every certificate below the anchor is valid at `at`."""
    if any(_issued_by(signer, ca) for ca in trusted):
        _check_validity(signer, "signer", at)
        return
    for middle in carried:
        if middle == signer or not _is_ca(middle) or not _issued_by(signer, middle):
            continue
        if any(_issued_by(middle, ca) for ca in trusted):
            _check_validity(middle, "intermediate", at)
            _check_validity(signer, "signer", at)
            return
    raise CmsError("the signer certificate is not issued by a trusted CA")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)  # issuer name and signature
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    # Without this, any end-entity certificate of the CA could issue "signers" itself.
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_validity(cert: x509.Certificate, role: str, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise CmsError(f"the {role} certificate is not valid before {cert.not_valid_before_utc}")
    if at > cert.not_valid_after_utc:
        raise CmsError(f"the {role} certificate expired at {cert.not_valid_after_utc}")
