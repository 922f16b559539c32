"""A bound on the OBJECT IDENTIFIERs asn1crypto decodes from what others send.

asn1crypto turns an OID's contents into dotted text byte by byte, the arc so far an
ever-growing integer: 60 KB of bytes with the high bit set cost 0.56 s of CPU (a SCEP
request within its 64 KB limit), and each doubling four times that; 300 KB of one-byte
arcs become 300,000 strings (20 MB at the peak) only to name an unknown algorithm in a
refusal. Real OIDs are a few dozen bytes at most (a 2.25.<UUID> one is about 20), so one
of more than MAX_OID_BYTES raises ValueError before it is decoded: what every reader of
DER here already refuses a malformed message on (int-to-text's 4,300-digit limit raised
the same for the slow kind, only seconds later). Imported by `orchardist.pki`, so any use
of asn1crypto through this package is bounded.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import core

MAX_OID_BYTES = 128

_decode = core.ObjectIdentifier.dotted.fget


def _bounded_dotted(oid: Any) -> Any:
    contents = oid.contents
    if contents is not None and len(contents) > MAX_OID_BYTES:
        raise ValueError(
            f"an OBJECT IDENTIFIER of {len(contents):,} bytes (at most {MAX_OID_BYTES} are read)"
        )
    return _decode(oid)


core.ObjectIdentifier.dotted = property(_bounded_dotted)
