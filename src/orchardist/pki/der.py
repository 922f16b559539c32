"""A minimal DER encoder (X.690) for the structures this server emits on hot paths.

Written by hand on purpose: building a SignedData with asn1crypto's object model costs
about 5 ms of Python per CertRep (measured by `make bench`, scenario scep), more than the
three RSA operations of an enrollment together; concatenating bytes costs microseconds.
Parsing stays with asn1crypto.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime


def tlv(tag: int, contents: bytes) -> bytes:
    """One tag-length-value with a definite length, as DER requires."""
    size = len(contents)
    if size < 0x80:
        return bytes((tag, size)) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + contents


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_of(items: Iterable[bytes]) -> bytes:
    """SET OF with its elements in DER order."""
    return tlv(0x31, b"".join(in_der_order(items)))


def in_der_order(items: Iterable[bytes]) -> list[bytes]:
    """Encoded elements in the order DER gives a SET OF (X.690 §11.6: ascending as octet
    strings, the shorter padded with trailing zeros)."""
    encoded: list[bytes] = list(items)
    width = max((len(item) for item in encoded), default=0)

    def padded(item: bytes) -> bytes:
        return item.ljust(width, b"\0")

    return sorted(encoded, key=padded)


def explicit(number: int, contents: bytes) -> bytes:
    """[number] EXPLICIT (context-specific, constructed)."""
    return tlv(0xA0 | number, contents)


def integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


NULL = b"\x05\x00"


@functools.lru_cache(maxsize=256)  # a few dozen OIDs, encoded for every message
def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER; ValueError for anything that is not a dotted OID."""
    try:
        arcs = [int(arc) for arc in dotted.split(".")]
    except ValueError:
        raise ValueError(f"not a dotted OID: {dotted!r}") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"not a dotted OID: {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def time(moment: datetime) -> bytes:
    """UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5652 §11.3), to the second."""
    moment = moment.astimezone(UTC)
    if 1950 <= moment.year < 2050:
        return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode("ascii"))
