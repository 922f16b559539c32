"""The common shape of a SignedData, read without asn1crypto: every MDM request signature
(Apple, "Mdm-Signature") and every SCEP pkiMessage (RFC 8894 §3.2) has it.

Each device request carries one, and the full reader (asn1crypto objects for every field)
was a tenth of a check-in's CPU and a quarter of a SCEP request's. Devices and SCEP clients
all send the same shape: id-data content (carried or detached), certificates, one SignerInfo
addressed by issuerAndSerialNumber, signed attributes with one value each, RSA PKCS#1 v1.5.
`read_signed` picks that shape apart with a plain TLV walk and returns None for anything
else — the caller then takes the full reader, which also gives the precise refusal. This
module only reads; the digest, signature and certificate checks are the callers'
(`cms_sign.verify`, `mdm/identity.py`), with the rules of RFC 5652 §5.

Hand-written because no maintained library reads CMS without building an object per field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from orchardist.pki.asn1_limits import MAX_OID_BYTES
from orchardist.pki.cms_common import DigestName

# DER tags (X.690 §8): universal class, and the context-specific ones CMS uses.
_INTEGER, _OCTET_STRING, _OID, _SEQUENCE, _SET = 0x02, 0x04, 0x06, 0x30, 0x31
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_CONTEXT_0, _CONTEXT_1 = 0xA0, 0xA1  # constructed [0], [1]

# DER of the OIDs' contents (after tag and length).
_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_ID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_CONTENT_TYPE = bytes.fromhex("2a864886f70d010903")  # 1.2.840.113549.1.9.3
_MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")  # 1.2.840.113549.1.9.4
_SIGNING_TIME = bytes.fromhex("2a864886f70d010905")  # 1.2.840.113549.1.9.5
_DIGESTS: dict[bytes, DigestName] = {
    bytes.fromhex("2b0e03021a"): "sha1",
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}
_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")
# shaNWithRSAEncryption: each names its digest, which must be the SignerInfo's.
_RSA_WITH: dict[bytes, DigestName] = {
    bytes.fromhex("2a864886f70d010105"): "sha1",
    bytes.fromhex("2a864886f70d01010b"): "sha256",
    bytes.fromhex("2a864886f70d01010c"): "sha384",
    bytes.fromhex("2a864886f70d01010d"): "sha512",
}


@dataclass(frozen=True)
class QuickSigned:
    content: bytes | None  # the encapsulated content; None when detached
    certificates: tuple[bytes, ...]  # the DER of each certificate carried
    issuer: bytes  # the signer's issuerAndSerialNumber: issuer Name, DER
    serial: int
    digest: DigestName
    message_digest: bytes  # the messageDigest attribute's value
    signing_time: datetime | None  # the signingTime attribute, UTC
    signed_bytes: bytes  # the signed attributes as the DER SET OF the signature covers
    signature: bytes
    attributes: Mapping[str, bytes]  # every signed attribute: dotted OID -> its value's DER


class _UnusualShapeError(Exception):
    """Not the common shape (or not DER at all): the full reader decides."""


def read_signed(der: bytes) -> QuickSigned | None:
    """The parts of an attribute-signed RSA SignedData of id-data; None for any other shape."""
    return _read_signed(bytes(der))  # slices of a bytes are bytes: hashable, comparable


# A SCEP request is read twice (its attributes, then its signature); the second costs a
# dictionary lookup on the same bytes object, whose hash Python keeps.
@functools.lru_cache(maxsize=16)
def _read_signed(der: bytes) -> QuickSigned | None:
    try:
        return _read(der)
    except (_UnusualShapeError, IndexError, ValueError):
        return None


def _read(der: bytes) -> QuickSigned:
    info = _children(der, *_expect(der, 0, _SEQUENCE, whole=True))
    if len(info) != 2 or _oid(der, info[0]) != _SIGNED_DATA or info[1][0] != _CONTEXT_0:
        raise _UnusualShapeError
    signed_data = _children(der, *_expect(der, info[1][3], _SEQUENCE, within=info[1][2]))
    # version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos; no [1] crls
    if len(signed_data) != 5 or signed_data[3][0] != _CONTEXT_0:
        raise _UnusualShapeError
    encapsulated = _children(der, *_inner(signed_data[2], _SEQUENCE))
    if not 1 <= len(encapsulated) <= 2 or _oid(der, encapsulated[0]) != _ID_DATA:
        raise _UnusualShapeError
    content = None
    if len(encapsulated) == 2:  # [0] EXPLICIT OCTET STRING (a constructed one is BER)
        (carried,) = _children(der, *_inner(encapsulated[1], _CONTEXT_0))
        content = _octets(der, carried)
    certificates = tuple(
        der[start:end] for _, start, end, _ in _children(der, *_inner(signed_data[3]))
    )
    signer_infos = _children(der, *_inner(signed_data[4], _SET))
    if len(signer_infos) != 1:
        raise _UnusualShapeError
    signer_info = _children(der, *_inner(signer_infos[0], _SEQUENCE))
    return _signer_info(der, signer_info, content, certificates)


def _signer_info(
    der: bytes,
    fields: list[tuple[int, int, int, int]],
    content: bytes | None,
    certificates: tuple[bytes, ...],
) -> QuickSigned:
    # version 1, issuerAndSerialNumber, digestAlgorithm, [0] signedAttrs, signatureAlgorithm,
    # signature; no unsigned attributes
    if len(fields) != 6 or _integer(der, fields[0]) != 1 or fields[3][0] != _CONTEXT_0:
        raise _UnusualShapeError
    sid = _children(der, *_inner(fields[1], _SEQUENCE))
    if len(sid) != 2 or sid[0][0] != _SEQUENCE:
        raise _UnusualShapeError
    digest = _DIGESTS.get(_algorithm(der, fields[2]) or b"")
    signature_oid = _algorithm(der, fields[4])
    if digest is None or not (
        signature_oid == _RSA_ENCRYPTION or _RSA_WITH.get(signature_oid or b"") == digest
    ):
        raise _UnusualShapeError
    _, attributes_start, attributes_end, _ = fields[3]
    found = _attributes(der, fields[3])
    if _CONTENT_TYPE not in found or _oid(der, found[_CONTENT_TYPE]) != _ID_DATA:
        raise _UnusualShapeError
    if _MESSAGE_DIGEST not in found:
        raise _UnusualShapeError
    signing_time = _time(der, found[_SIGNING_TIME]) if _SIGNING_TIME in found else None
    return QuickSigned(
        content=content,
        certificates=certificates,
        issuer=der[sid[0][1] : sid[0][2]],
        serial=_integer(der, sid[1]),
        digest=digest,
        message_digest=_octets(der, found[_MESSAGE_DIGEST]),
        signing_time=signing_time,
        # RFC 5652 §5.4: signed as a universal SET OF, not as the [0] IMPLICIT it travels in.
        signed_bytes=b"\x31" + der[attributes_start + 1 : attributes_end],
        signature=_octets(der, fields[5]),
        attributes={_dotted(oid): der[value[1] : value[2]] for oid, value in found.items()},
    )


def _attributes(
    der: bytes, field: tuple[int, int, int, int]
) -> dict[bytes, tuple[int, int, int, int]]:
    """Each signed attribute's OID (contents) and its one value."""
    found: dict[bytes, tuple[int, int, int, int]] = {}
    for attribute in _children(der, *_inner(field)):
        parts = _children(der, *_inner(attribute, _SEQUENCE))
        if len(parts) != 2:
            raise _UnusualShapeError
        values = _children(der, *_inner(parts[1], _SET))
        oid = _oid(der, parts[0])
        if oid in found or len(values) != 1:  # §5.3: one instance; one value each here
            raise _UnusualShapeError
        found[oid] = values[0]
    return found


@functools.lru_cache(maxsize=256)
def _dotted(oid: bytes) -> str:
    """An OID's contents (X.690 §8.19) as dotted text; a long one is left to asn1crypto,
    which refuses it (orchardist.pki.asn1_limits) before its arcs grow quadratically."""
    if len(oid) > MAX_OID_BYTES:
        raise _UnusualShapeError
    arcs: list[int] = []
    value = 0
    for byte in oid:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or value:
        raise _UnusualShapeError
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


# -- the TLV walk: (tag, start of the whole TLV, end, start of the contents)


def _header(der: bytes, at: int, end: int) -> tuple[int, int, int, int]:
    tag = der[at]
    if tag & 0x1F == 0x1F:  # high tag numbers: nothing in this shape uses them
        raise _UnusualShapeError
    length = der[at + 1]
    contents = at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:  # indefinite (BER) or absurd: not DER
            raise _UnusualShapeError
        length = int.from_bytes(der[contents : contents + count], "big")
        contents += count
    if contents + length > end:
        raise _UnusualShapeError
    return tag, at, contents + length, contents


def _expect(
    der: bytes, at: int, tag: int, *, within: int | None = None, whole: bool = False
) -> tuple[int, int]:
    found, _, end, contents = _header(der, at, len(der) if within is None else within)
    if found != tag or (whole and end != len(der)):
        raise _UnusualShapeError
    return contents, end


def _inner(field: tuple[int, int, int, int], tag: int | None = None) -> tuple[int, int]:
    found, _, end, contents = field
    if tag is not None and found != tag:
        raise _UnusualShapeError
    return contents, end


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    found = []
    while start < end:
        field = _header(der, start, end)
        found.append(field)
        start = field[2]
    return found


def _oid(der: bytes, field: tuple[int, int, int, int]) -> bytes:
    return der[slice(*_inner(field, _OID))]


def _octets(der: bytes, field: tuple[int, int, int, int]) -> bytes:
    return der[slice(*_inner(field, _OCTET_STRING))]


def _integer(der: bytes, field: tuple[int, int, int, int]) -> int:
    return int.from_bytes(der[slice(*_inner(field, _INTEGER))], "big", signed=True)


def _algorithm(der: bytes, field: tuple[int, int, int, int]) -> bytes | None:
    """An AlgorithmIdentifier's OID, when its parameters are absent or NULL."""
    parts = _children(der, *_inner(field, _SEQUENCE))
    if not 1 <= len(parts) <= 2:
        return None
    if len(parts) == 2 and der[parts[1][1] : parts[1][2]] != b"\x05\x00":
        return None
    return _oid(der, parts[0])


def _time(der: bytes, field: tuple[int, int, int, int]) -> datetime:
    tag, _, end, contents = field
    text = der[contents:end].decode("ascii")
    if not text.endswith("Z"):
        raise _UnusualShapeError
    if tag == _UTC_TIME and len(text) == 13:  # YYMMDDHHMMSSZ; RFC 5280 §4.1.2.5.1 window
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME or len(text) != 15:
        raise _UnusualShapeError
    if not text[:14].isdigit():
        raise _UnusualShapeError
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(4, 14, 2))
    return datetime(int(text[:4]), month, day, hour, minute, second, tzinfo=UTC)


# -- EnvelopedData (RFC 5652 §6): what a SCEP request carries, encrypted to our RA


_ENVELOPED_DATA = bytes.fromhex("2a864886f70d010703")  # 1.2.840.113549.1.7.3
_PRIMITIVE_0 = 0x80  # [0] IMPLICIT OCTET STRING, primitive


@dataclass(frozen=True)
class QuickRecipient:
    issuer: bytes  # issuerAndSerialNumber: issuer Name, DER
    serial: int
    encrypted_key: bytes  # RSA PKCS#1 v1.5 (rsaEncryption)


@dataclass(frozen=True)
class QuickEnveloped:
    recipients: tuple[QuickRecipient, ...]
    cipher: str  # the content cipher's dotted OID
    iv: bytes
    ciphertext: bytes


def read_enveloped(der: bytes) -> QuickEnveloped | None:
    """The parts of an EnvelopedData of RSA key transports to issuerAndSerialNumber
    recipients and a CBC content cipher; None for any other shape."""
    try:
        return _read_enveloped(bytes(der))
    except (_UnusualShapeError, IndexError, ValueError):
        return None


def _read_enveloped(der: bytes) -> QuickEnveloped:
    info = _children(der, *_expect(der, 0, _SEQUENCE, whole=True))
    if len(info) != 2 or _oid(der, info[0]) != _ENVELOPED_DATA or info[1][0] != _CONTEXT_0:
        raise _UnusualShapeError
    enveloped = _children(der, *_expect(der, info[1][3], _SEQUENCE, within=info[1][2]))
    # version, recipientInfos, encryptedContentInfo: no originatorInfo, no unprotectedAttrs
    if len(enveloped) != 3 or enveloped[0][0] != _INTEGER:
        raise _UnusualShapeError
    recipients = tuple(
        _key_transport(der, _children(der, *_inner(r, _SEQUENCE)))
        for r in _children(der, *_inner(enveloped[1], _SET))
    )
    content = _children(der, *_inner(enveloped[2], _SEQUENCE))
    if len(content) != 3 or _oid(der, content[0]) != _ID_DATA:
        raise _UnusualShapeError
    algorithm = _children(der, *_inner(content[1], _SEQUENCE))
    if len(algorithm) != 2:
        raise _UnusualShapeError
    tag, _, end, start = content[2]
    if tag == _PRIMITIVE_0:
        ciphertext = der[start:end]
    elif tag == _CONTEXT_0:  # BER's constructed form, as Go's pkcs7 writes: OCTET STRINGs
        ciphertext = b"".join(_octets(der, chunk) for chunk in _children(der, start, end))
    else:
        raise _UnusualShapeError
    return QuickEnveloped(
        recipients=recipients,
        cipher=_dotted(_oid(der, algorithm[0])),
        iv=_octets(der, algorithm[1]),
        ciphertext=ciphertext,
    )


def _key_transport(der: bytes, fields: list[tuple[int, int, int, int]]) -> QuickRecipient:
    # KeyTransRecipientInfo: version 0, issuerAndSerialNumber, rsaEncryption, encryptedKey
    if len(fields) != 4 or _integer(der, fields[0]) != 0:
        raise _UnusualShapeError
    rid = _children(der, *_inner(fields[1], _SEQUENCE))
    if len(rid) != 2 or rid[0][0] != _SEQUENCE or _algorithm(der, fields[2]) != _RSA_ENCRYPTION:
        raise _UnusualShapeError
    return QuickRecipient(
        issuer=der[rid[0][1] : rid[0][2]],
        serial=_integer(der, rid[1]),
        encrypted_key=_octets(der, fields[3]),
    )
