"""orchardist.pki.asn1_limits: an OBJECT IDENTIFIER longer than any real one is refused
before asn1crypto decodes it (its arcs grow quadratically), and the readers refuse the
message as malformed, as they did when the decoding failed seconds later."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asn1crypto import core

from orchardist.pki import cms
from orchardist.pki.asn1_limits import MAX_OID_BYTES
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep.client import make_csr
from tests.fuzz.der_mutations import growing_arc, with_digest_oid
from tests.keys import rsa_key


def _oid(contents: bytes) -> core.ObjectIdentifier:
    return core.ObjectIdentifier.load(bytes([0x06, 0x81, len(contents)]) + contents)


def test_oids_up_to_the_bound_decode_longer_ones_are_refused() -> None:
    assert _oid(b"\x01" * MAX_OID_BYTES).dotted == "0.1" + ".1" * (MAX_OID_BYTES - 1)
    with pytest.raises(ValueError, match=f"OBJECT IDENTIFIER of {MAX_OID_BYTES + 1} bytes"):
        _ = _oid(b"\x01" * (MAX_OID_BYTES + 1)).native


def test_a_signed_message_with_a_long_oid_is_malformed() -> None:
    now = datetime.now(UTC)
    ca = CertificateAuthority(*generate_ca("OID limit CA", "Orchardist tests"))
    key = rsa_key(174)
    signer = ca.issue_client_certificate(make_csr(key, "device"), validity_days=1, now=now)
    der = cms.sign(b"content", signer, key, digest="sha256")
    for length in (MAX_OID_BYTES + 1, 60_000):
        with pytest.raises(cms.CmsError, match="malformed SignedData: an OBJECT IDENTIFIER"):
            cms.verify(with_digest_oid(der, growing_arc(length)), detached_content=b"content")
