"""Fuzzing the CMS readers behind Mdm-Signature and SCEP: the verifier devices are known
by, cms.verify and decrypt, the quick TLV readers, and the SCEP pkiMessage reader. Inputs
are valid messages with their DER tree changed (tests/fuzz/der_mutations.py) or their
bytes flipped; each reader answers or refuses with its documented error."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import example, given
from hypothesis import strategies as st

from orchardist.mdm.identity import IdentityError, SignatureVerifier
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.pki.cms_quick import read_enveloped, read_signed
from orchardist.scep import client
from orchardist.scep.messages import (
    OID_SENDER_NONCE,
    OID_TRANSACTION_ID,
    MessageType,
    ScepMessageError,
    read_request,
)
from tests.fuzz.der_mutations import der_mutated, growing_arc, with_digest_oid
from tests.fuzz.harness import bounded_call, fuzzing, traced
from tests.keys import rsa_key
from tests.web.mutations import flipped

NOW = datetime.now(UTC)
BODY = b'<?xml version="1.0"?><plist><dict><key>Status</key><string>Idle</string></dict></plist>'
CA = CertificateAuthority(*generate_ca("Fuzz CA", "Orchardist tests"))
KEY = rsa_key(171)
DEVICE = CA.issue_client_certificate(client.make_csr(KEY, "device"), validity_days=30, now=NOW)
SIGNED = [
    cms.sign(BODY, DEVICE, KEY, digest="sha1"),
    cms.sign(BODY, DEVICE, KEY, digest="sha256"),
    cms.sign(BODY, DEVICE, KEY, detached=False),
]
ENVELOPED = [cms.encrypt(BODY, [DEVICE], cipher=c) for c in ("aes128", "aes256", "des3")]
VERIFIER = SignatureVerifier([CA.certificate])


def _long_named_signer(der: bytes) -> bytes:
    """The message with its signer named by our CA's name but a 300,000-character
    organisation: comparing names the RFC 5280 way (string preparation of every
    character) took seconds of CPU for it, before names that long were compared byte for
    byte only. Found by `make fuzz`."""
    info = asn1_cms.ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    rdns = [("common_name", "Fuzz CA"), ("organization_name", "A" * 300_000)]
    name = asn1_x509.Name(name="", value=asn1_x509.RDNSequence([
        asn1_x509.RelativeDistinguishedName([asn1_x509.NameTypeAndValue(
            {"type": kind, "value": asn1_x509.DirectoryString(name="utf8_string", value=text)}
        )]) for kind, text in rdns
    ]))  # fmt: skip
    serial = signer["sid"].chosen["serial_number"].native
    signer["sid"] = asn1_cms.SignerIdentifier(
        name="issuer_and_serial_number", value={"issuer": name, "serial_number": serial}
    )
    return bytes(info.dump(force=True))


LONG_NAMED = _long_named_signer(SIGNED[0])
# The signer's certificate with version 123 (cryptography's InvalidVersion, not a
# ValueError, escaped the quick verifier: a 500 at /scep). Found by `make fuzz`.
BAD_VERSION = SIGNED[0].replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x7b", 1)


def _deeply_nested_attribute(der: bytes, oid: str) -> bytes:
    """The message with the signed attribute `oid` (added if it is not there) a
    PrintableString inside 5,000 SEQUENCEs: reading it as a Python value recursed past the
    interpreter's limit — a 500 at /scep (transactionID, senderNonce) and at /mdm (any
    attribute of an Mdm-Signature) before the readers checked types first. Found by
    `make fuzz`."""
    nested = b"\x13\x01A"
    for _ in range(5000):
        nested = b"\x30" + _der_length(len(nested)) + nested
    value = asn1_cms.SetOfAny([asn1_core.Any.load(nested)])
    info = asn1_cms.ContentInfo.load(der)
    attributes = info["content"]["signer_infos"][0]["signed_attrs"]
    matching = [a for a in attributes if a["type"].dotted == oid]
    for attribute in matching:
        attribute["values"] = value
    if not matching:
        attributes.append(asn1_cms.CMSAttribute({"type": oid, "values": value}))
    return bytes(info.dump(force=True))


# The signer's digest algorithm one OID arc of 200,000 bytes: asn1crypto (and the quick
# reader) grew its value byte by byte, quadratic: 0.56 s of CPU at 60 KB, about 6 s here,
# before OIDs longer than any real one were refused undecoded. Found reading the readers.
GROWING_ARC = with_digest_oid(SIGNED[1], growing_arc(200_000))


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _changed(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seed = st.sampled_from(seeds)
    return st.one_of(seed.flatmap(der_mutated), seed.flatmap(der_mutated), seed.flatmap(flipped))


def _scep_messages() -> list[bytes]:
    requester = client.Requester(
        client.self_signed_signer(KEY, DEVICE.subject), KEY, CA.certificate
    )
    csr = client.make_csr(KEY, "device", "challenge").public_bytes(Encoding.DER)
    return [
        client.pki_message(requester, MessageType.PKCS_REQ, csr, "T" * 40),
        client.pki_message(requester, MessageType.CERT_POLL, b"\x30\x00", "T" * 40),
    ]


@fuzzing(120)
@given(der=_changed(SIGNED), body=st.sampled_from([BODY, BODY[:-1], b""]), text=st.booleans())
@example(der=LONG_NAMED, body=BODY, text=False)
@example(der=_deeply_nested_attribute(SIGNED[0], "1.2.3.4.5"), body=BODY, text=False)
def test_mdm_signature(der: bytes, body: bytes, text: bool) -> None:
    header = base64.b64encode(der).decode()
    if text:  # a header a proxy or a liar mangled
        header = header[: len(header) // 2] + " \t" + header[len(header) // 2 :]
    with traced():
        bounded_call("mdm_signature", lambda: VERIFIER.signer(header, body, NOW),
                     (IdentityError,), size=len(der))  # fmt: skip


@fuzzing(120)
@given(der=_changed(SIGNED))
@example(der=LONG_NAMED)
@example(der=BAD_VERSION)
@example(der=GROWING_ARC)
@example(der=_deeply_nested_attribute(SIGNED[2], "1.2.3.4.5"))
def test_cms_verify(der: bytes) -> None:
    with traced():
        bounded_call("cms.verify", lambda: cms.verify(der, detached_content=BODY,
                     trusted=[CA.certificate]), (cms.CmsError,), size=len(der))  # fmt: skip


@fuzzing(120)
@given(der=_changed(SIGNED))
def test_quick_signed_reader(der: bytes) -> None:
    with traced():
        bounded_call("cms_quick.read_signed", lambda: read_signed(der), (), size=len(der))


@fuzzing(120)
@given(der=_changed(ENVELOPED))
def test_enveloped_readers(der: bytes) -> None:
    with traced():
        bounded_call("cms_quick.read_enveloped", lambda: read_enveloped(der), (), size=len(der))
        bounded_call("cms.decrypt", lambda: cms.decrypt(der, DEVICE, KEY), (cms.CmsError,),
                     size=len(der))  # fmt: skip


@fuzzing(120)
@given(der=_changed(_scep_messages()))
@example(der=_deeply_nested_attribute(_scep_messages()[0], OID_TRANSACTION_ID))
@example(der=_deeply_nested_attribute(_scep_messages()[0], OID_SENDER_NONCE))
@example(der=with_digest_oid(_scep_messages()[0], growing_arc(200_000)))
def test_scep_read_request(der: bytes) -> None:
    with traced():
        bounded_call("scep.read_request", lambda: read_request(der), (ScepMessageError,),
                     size=len(der))  # fmt: skip
