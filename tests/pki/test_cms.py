"""orchardist.pki.cms: our own round trips, and OpenSSL as the independent second opinion
in both directions (it verifies and decrypts what we make, we verify and decrypt what it
makes)."""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from orchardist.pki import cms

OPENSSL = "/usr/bin/openssl"
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"  # SCEP messageType (RFC 8894 §3.2.1.2)
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
# Content that CRLF conversion, text mode or a C string would all damage.
CONTENT = b"line one\nline two\r\n\x00\x01\xff binary tail\n"
NOW = datetime.now(UTC)


# --- keys, certificates, files ---------------------------------------------------------


@functools.cache
def _key(index: int) -> rsa.RSAPrivateKey:
    del index  # only distinguishes the cache entries
    # 1024 bits: test-only keys, fast to make, and room enough for a SHA-512 PKCS#1 v1.5
    # signature; 2048-bit generation would dominate the run time.
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


@dataclass(frozen=True)
class Identity:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def _certificate(
    common_name: str,
    key: rsa.RSAPrivateKey,
    issuer: Identity | None = None,
    *,
    ca: bool = False,
    not_before: datetime = NOW - timedelta(hours=1),
    not_after: datetime = NOW + timedelta(days=1),
) -> Identity:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Identity(cert, key)


@pytest.fixture(scope="module")
def ca() -> Identity:
    return _certificate("Test CA", _key(0), ca=True)


@pytest.fixture(scope="module")
def leaf(ca: Identity) -> Identity:
    return _certificate("device", _key(1), ca)


@pytest.fixture(scope="module")
def stranger() -> Identity:
    """A self-signed identity, like a SCEP client's throw-away signer."""
    return _certificate("stranger", _key(2))


def _pem(path: Path, *items: x509.Certificate | rsa.RSAPrivateKey) -> str:
    chunks = [
        item.public_bytes(serialization.Encoding.PEM)
        if isinstance(item, x509.Certificate)
        else item.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for item in items
    ]
    path.write_bytes(b"".join(chunks))
    return str(path)


def _openssl(*args: str, stdin: bytes = b"") -> bytes:
    result = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@functools.cache
def _legacy_provider() -> tuple[str, ...]:
    """OpenSSL 3 keeps single DES in the legacy provider; load it when there is one."""
    args = ("-provider", "legacy", "-provider", "default")
    probe = subprocess.run([OPENSSL, "list", "-providers", *args], capture_output=True, check=False)
    return args if probe.returncode == 0 else ()


def _cipher_args(cipher: cms.ContentCipher) -> tuple[str, ...]:
    if cipher == "des":
        # Debian's libssl3 ships the legacy provider; without it this peer check cannot run,
        # and a check that silently does not run is worse than a clear failure.
        assert _legacy_provider(), "this OpenSSL has no legacy provider, so no DES-CBC"
        return _legacy_provider()
    return ()


def _reason(der: bytes, **kwargs: object) -> str:
    with pytest.raises(cms.CmsError) as caught:
        cms.verify(der, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# --- sign and verify -------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("detached", [False, True])
def test_sign_verify_round_trip(
    ca: Identity, leaf: Identity, digest: cms.DigestName, detached: bool
) -> None:
    nonce = core.OctetString(b"n" * 16).dump()
    der = cms.sign(
        CONTENT,
        leaf.cert,
        leaf.key,
        digest=digest,
        detached=detached,
        signed_attributes=[
            (OID_MESSAGE_TYPE, core.PrintableString("19").dump()),
            (OID_SENDER_NONCE, nonce),
        ],
        extra_certs=[ca.cert],
    )
    message = cms.verify(der, detached_content=CONTENT if detached else None, trusted=[ca.cert])
    assert message.content == CONTENT
    assert message.signer == leaf.cert
    assert set(message.certificates) == {leaf.cert, ca.cert}  # a SET OF: order is not kept
    assert message.digest == digest
    assert message.signed_attributes[OID_MESSAGE_TYPE] == (b"\x13\x0219",)
    assert message.signed_attributes[OID_SENDER_NONCE] == (nonce,)
    assert message.signed_attributes["1.2.840.113549.1.9.3"] == (
        core.ObjectIdentifier("1.2.840.113549.1.7.1").dump(),
    )
    assert message.signing_time is not None
    assert message.signing_time.tzinfo is not None
    assert abs(message.signing_time - datetime.now(UTC)) < timedelta(minutes=1)


def test_repeated_attribute_oid_becomes_one_multi_valued_attribute(leaf: Identity) -> None:
    values = [core.PrintableString(v).dump() for v in ("a", "b")]
    der = cms.sign(
        b"x", leaf.cert, leaf.key, signed_attributes=[(OID_MESSAGE_TYPE, v) for v in values]
    )
    assert sorted(cms.verify(der).signed_attributes[OID_MESSAGE_TYPE]) == sorted(values)


def test_empty_content_is_attached_not_detached(leaf: Identity) -> None:
    # A SCEP CertRep FAILURE signs empty content (RFC 8894 §3.3.2).
    assert cms.verify(cms.sign(b"", leaf.cert, leaf.key)).content == b""


def test_detached_without_content_is_refused(leaf: Identity) -> None:
    der = cms.sign(CONTENT, leaf.cert, leaf.key, detached=True)
    assert "detached" in _reason(der)


def test_attached_content_must_equal_given_detached_content(leaf: Identity) -> None:
    der = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert cms.verify(der, detached_content=CONTENT).content == CONTENT
    assert "other than the detached" in _reason(der, detached_content=b"another body")


def test_sign_refuses_bad_arguments(leaf: Identity, stranger: Identity) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        cms.sign(b"x", leaf.cert, stranger.key)
    with pytest.raises(ValueError, match="sets attribute"):
        cms.sign(
            b"x", leaf.cert, leaf.key, signed_attributes=[("1.2.840.113549.1.9.4", b"\x04\x00")]
        )
    with pytest.raises(ValueError, match="one DER value"):
        cms.sign(b"x", leaf.cert, leaf.key, signed_attributes=[(OID_MESSAGE_TYPE, b"\x13\x05ab")])


def test_digest_of() -> None:
    assert isinstance(cms.digest_of("sha1"), hashes.SHA1)
    assert isinstance(cms.digest_of("sha256"), hashes.SHA256)
    assert isinstance(cms.digest_of("sha512"), hashes.SHA512)


# --- OpenSSL checks our signatures, and we check OpenSSL's --------------------------------


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("detached", [False, True])
def test_openssl_verifies_our_signature(
    tmp_path: Path, ca: Identity, leaf: Identity, digest: cms.DigestName, detached: bool
) -> None:
    der = cms.sign(
        CONTENT,
        leaf.cert,
        leaf.key,
        digest=digest,
        detached=detached,
        signed_attributes=[(OID_MESSAGE_TYPE, core.PrintableString("3").dump())],
    )
    (tmp_path / "content").write_bytes(CONTENT)
    args = [
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-CAfile",
        _pem(tmp_path / "ca.pem", ca.cert),
        "-binary",
        "-purpose",
        "any",
    ]
    if detached:
        args += ["-content", str(tmp_path / "content")]
    assert _openssl(*args, stdin=der) == CONTENT


@pytest.mark.parametrize(
    ("command", "options"),
    [
        pytest.param(["cms", "-sign", "-md", "sha1", "-nodetach"], [], id="cms-sha1-attached"),
        pytest.param(["cms", "-sign", "-md", "sha256"], [], id="cms-detached"),
        pytest.param(["smime", "-sign", "-md", "sha256"], [], id="smime-detached"),
        pytest.param(["cms", "-sign", "-nodetach", "-stream"], [], id="cms-BER-indefinite"),
        pytest.param(["cms", "-sign", "-nodetach", "-noattr"], [], id="cms-no-attributes"),
        pytest.param(["cms", "-sign", "-nodetach", "-keyid"], [], id="cms-ski-signer-id"),
        pytest.param(
            ["cms", "-sign", "-nodetach"], ["-keyopt", "rsa_padding_mode:pss"], id="cms-rsassa-pss"
        ),
    ],
)
def test_we_verify_openssl_signatures(
    tmp_path: Path, ca: Identity, leaf: Identity, command: list[str], options: list[str]
) -> None:
    der = _openssl(
        *command,
        "-binary",
        "-outform",
        "DER",
        "-signer",
        _pem(tmp_path / "leaf.pem", leaf.cert),
        "-inkey",
        _pem(tmp_path / "key.pem", leaf.key),
        *options,
        stdin=CONTENT,
    )
    detached = "-nodetach" not in command
    message = cms.verify(der, detached_content=CONTENT if detached else None, trusted=[ca.cert])
    assert message.content == CONTENT
    assert message.signer == leaf.cert
    assert message.digest == ("sha1" if "sha1" in command else "sha256")
    if "-noattr" in command:
        assert message.signed_attributes == {}
        assert message.signing_time is None
    else:
        assert message.signing_time is not None
    if detached:
        with pytest.raises(cms.CmsError, match="message digest"):
            cms.verify(der, detached_content=CONTENT + b"!")


# --- tampering and trust -------------------------------------------------------------


def _edit(der: bytes, change: Callable[[asn1_cms.SignedData], None]) -> bytes:
    info = asn1_cms.ContentInfo.load(der)
    change(info["content"])
    edited: bytes = info.dump(force=True)
    return edited


def _resign(
    der: bytes,
    key: rsa.RSAPrivateKey,
    change: Callable[[list[asn1_cms.CMSAttribute]], list[asn1_cms.CMSAttribute]],
) -> bytes:
    """Edit the signed attributes and sign them again, as a forger with the key could."""

    def apply(signed_data: asn1_cms.SignedData) -> None:
        signer_info = signed_data["signer_infos"][0]
        attributes = asn1_cms.CMSAttributes(change(list(signer_info["signed_attrs"])))
        signer_info["signed_attrs"] = attributes
        signer_info["signature"] = key.sign(attributes.dump(), padding.PKCS1v15(), hashes.SHA256())

    return _edit(der, apply)


def _without(oid: str) -> Callable[[list[asn1_cms.CMSAttribute]], list[asn1_cms.CMSAttribute]]:
    return lambda attributes: [a for a in attributes if a["type"].dotted != oid]


def test_resign_helper_keeps_a_valid_message_valid(leaf: Identity) -> None:
    der = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert cms.verify(_resign(der, leaf.key, list)).content == CONTENT


def test_swapped_content_is_refused(leaf: Identity) -> None:
    detached = cms.sign(CONTENT, leaf.cert, leaf.key, detached=True)
    assert "message digest" in _reason(detached, detached_content=b"{'evil': true}")

    def swap(signed_data: asn1_cms.SignedData) -> None:
        signed_data["encap_content_info"]["content"] = b"{'evil': true}"

    attached = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert "message digest" in _reason(_edit(attached, swap))


def test_flipped_signature_byte_is_refused(leaf: Identity) -> None:
    def flip(signed_data: asn1_cms.SignedData) -> None:
        signature = bytearray(signed_data["signer_infos"][0]["signature"].native)
        signature[-1] ^= 0x01
        signed_data["signer_infos"][0]["signature"] = bytes(signature)

    der = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert "signature does not verify" in _reason(_edit(der, flip))


def test_changed_signed_attribute_breaks_the_signature(leaf: Identity) -> None:
    der = cms.sign(
        CONTENT,
        leaf.cert,
        leaf.key,
        signed_attributes=[(OID_MESSAGE_TYPE, core.PrintableString("19").dump())],
    )
    needle = b"\x13\x0219"
    assert der.count(needle) == 1
    assert "signature does not verify" in _reason(der.replace(needle, b"\x13\x0217"))


def test_signature_without_signed_attributes_covers_the_content(leaf: Identity) -> None:
    def drop_attributes(signed_data: asn1_cms.SignedData) -> None:
        signer_info = signed_data["signer_infos"][0]
        signer_info["signed_attrs"] = None
        signer_info["signature"] = leaf.key.sign(CONTENT, padding.PKCS1v15(), hashes.SHA256())

    bare = _edit(cms.sign(CONTENT, leaf.cert, leaf.key), drop_attributes)
    assert cms.verify(bare).signed_attributes == {}
    swapped = _edit(bare, lambda sd: sd["encap_content_info"].__setitem__("content", b"x"))
    assert "signature does not verify" in _reason(swapped)


@pytest.mark.parametrize(
    ("oid", "reason"),
    [("1.2.840.113549.1.9.3", "contentType"), ("1.2.840.113549.1.9.4", "messageDigest")],
)
def test_required_signed_attributes(leaf: Identity, oid: str, reason: str) -> None:
    der = _resign(cms.sign(CONTENT, leaf.cert, leaf.key), leaf.key, _without(oid))
    assert reason in _reason(der)


def test_duplicate_signed_attribute_is_refused(leaf: Identity) -> None:
    der = cms.sign(CONTENT, leaf.cert, leaf.key)
    doubled = _resign(
        der,
        leaf.key,
        lambda attrs: [*attrs, *(a for a in attrs if a["type"].dotted == "1.2.840.113549.1.9.4")],
    )
    assert "appears twice" in _reason(doubled)


def test_signer_certificate_must_be_carried(leaf: Identity) -> None:
    def drop_certificates(signed_data: asn1_cms.SignedData) -> None:
        signed_data["certificates"] = None

    der = _edit(cms.sign(CONTENT, leaf.cert, leaf.key), drop_certificates)
    assert "signer certificate is not in" in _reason(der)


def test_untrusted_issuer_is_refused_only_when_trust_is_asked(
    ca: Identity, stranger: Identity
) -> None:
    other_ca = _certificate("Other CA", _key(3), ca=True)
    outsider = _certificate("outsider", _key(4), other_ca)
    for signer in (outsider, stranger):
        der = cms.sign(CONTENT, signer.cert, signer.key, extra_certs=[other_ca.cert])
        assert "not issued by a trusted CA" in _reason(der, trusted=[ca.cert])
        # A SCEP first request: signed by a throw-away certificate, no chain check.
        assert cms.verify(der).signer == signer.cert
    der = cms.sign(CONTENT, outsider.cert, outsider.key)
    assert cms.verify(der, trusted=[ca.cert, other_ca.cert]).signer == outsider.cert


def test_expired_and_not_yet_valid_signers(ca: Identity) -> None:
    expired = _certificate(
        "old", _key(1), ca, not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)
    )
    der = cms.sign(CONTENT, expired.cert, expired.key)
    assert "expired" in _reason(der, trusted=[ca.cert])
    assert cms.verify(der).content == CONTENT  # no trust asked, no time check
    # `at` inside the validity, but the signingTime (now) is outside it.
    assert "expired" in _reason(der, trusted=[ca.cert], at=NOW - timedelta(days=2))

    future = _certificate(
        "new", _key(1), ca, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30)
    )
    assert "not valid before" in _reason(
        cms.sign(CONTENT, future.cert, future.key), trusted=[ca.cert]
    )


def test_at_and_signing_time_are_both_checked(ca: Identity, leaf: Identity) -> None:
    der = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert cms.verify(der, trusted=[ca.cert], at=NOW).signer == leaf.cert
    assert "expired" in _reason(der, trusted=[ca.cert], at=NOW + timedelta(days=2))

    def backdate(attributes: list[asn1_cms.CMSAttribute]) -> list[asn1_cms.CMSAttribute]:
        old = asn1_cms.Time({"utc_time": NOW - timedelta(days=3)})
        kept = _without("1.2.840.113549.1.9.5")(attributes)
        return [*kept, asn1_cms.CMSAttribute({"type": "signing_time", "values": [old]})]

    backdated = _resign(der, leaf.key, backdate)
    assert cms.verify(backdated).signing_time is not None
    assert "not valid before" in _reason(backdated, trusted=[ca.cert])


def test_one_intermediate_from_the_message(ca: Identity) -> None:
    intermediate = _certificate("Intermediate", _key(3), ca, ca=True)
    signer = _certificate("device", _key(4), intermediate)
    der = cms.sign(CONTENT, signer.cert, signer.key, extra_certs=[intermediate.cert])
    assert cms.verify(der, trusted=[ca.cert]).signer == signer.cert
    bare = cms.sign(CONTENT, signer.cert, signer.key)
    assert "not issued by a trusted CA" in _reason(bare, trusted=[ca.cert])


def test_an_end_entity_certificate_cannot_act_as_intermediate(ca: Identity, leaf: Identity) -> None:
    forged = _certificate("forged", _key(4), leaf)  # "issued" by a non-CA certificate
    der = cms.sign(CONTENT, forged.cert, forged.key, extra_certs=[leaf.cert])
    assert "not issued by a trusted CA" in _reason(der, trusted=[ca.cert])


def test_malformed_input_is_a_cms_error(ca: Identity, leaf: Identity) -> None:
    good = cms.sign(CONTENT, leaf.cert, leaf.key)
    assert "malformed" in _reason(b"not DER at all")
    assert "malformed" in _reason(b"")
    assert "malformed" in _reason(good[: len(good) // 2])
    assert "malformed" in _reason(good + b"\x00")
    assert "expected CMS SignedData, got enveloped_data" in _reason(cms.encrypt(b"x", [ca.cert]))
    assert "no signer" in _reason(_edit(good, lambda sd: sd.__setitem__("signer_infos", [])))


def test_no_other_exception_escapes_verify(leaf: Identity) -> None:
    good = cms.sign(CONTENT, leaf.cert, leaf.key, detached=False)
    mutants = [good[:cut] for cut in range(0, len(good), 5)]
    mutants += [
        good[:at] + bytes([good[at] ^ flip]) + good[at + 1 :]
        for at in range(0, len(good), 3)
        for flip in (0x01, 0x80)
    ]
    for mutant in mutants:
        with contextlib.suppress(cms.CmsError):
            cms.verify(mutant)


# --- encrypt and decrypt -------------------------------------------------------------

CIPHERS: list[cms.ContentCipher] = ["aes128", "aes256", "des3", "des"]


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("content", [CONTENT, b"", b"x" * 64], ids=["binary", "empty", "blocks"])
def test_encrypt_decrypt_round_trip(
    leaf: Identity, cipher: cms.ContentCipher, content: bytes
) -> None:
    envelope = cms.decrypt(cms.encrypt(content, [leaf.cert], cipher=cipher), leaf.cert, leaf.key)
    assert envelope == cms.DecryptedEnvelope(content, cipher)


def test_each_of_several_recipients_can_decrypt(ca: Identity, leaf: Identity) -> None:
    der = cms.encrypt(CONTENT, [ca.cert, leaf.cert], cipher="des3")
    assert cms.decrypt(der, leaf.cert, leaf.key).content == CONTENT
    assert cms.decrypt(der, ca.cert, ca.key).content == CONTENT


@pytest.mark.parametrize("cipher", CIPHERS)
def test_openssl_decrypts_our_envelope(
    tmp_path: Path, leaf: Identity, cipher: cms.ContentCipher
) -> None:
    provider = _cipher_args(cipher)
    der = cms.encrypt(CONTENT, [leaf.cert], cipher=cipher)
    plain = _openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-binary",
        *provider,
        "-recip",
        _pem(tmp_path / "cert.pem", leaf.cert),
        "-inkey",
        _pem(tmp_path / "key.pem", leaf.key),
        stdin=der,
    )
    assert plain == CONTENT


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("keyid", [False, True], ids=["issuer-serial", "ski"])
def test_we_decrypt_openssl_envelopes(
    tmp_path: Path, leaf: Identity, cipher: cms.ContentCipher, keyid: bool
) -> None:
    flag = {"aes128": "-aes128", "aes256": "-aes256", "des3": "-des3", "des": "-des"}[cipher]
    der = _openssl(
        "cms",
        "-encrypt",
        "-binary",
        "-outform",
        "DER",
        flag,
        *_cipher_args(cipher),
        *(["-keyid"] if keyid else []),
        _pem(tmp_path / "cert.pem", leaf.cert),
        stdin=CONTENT,
    )
    assert cms.decrypt(der, leaf.cert, leaf.key) == cms.DecryptedEnvelope(CONTENT, cipher)


def test_unsupported_cipher_is_a_cms_error(tmp_path: Path, leaf: Identity) -> None:
    der = _openssl(
        "cms",
        "-encrypt",
        "-binary",
        "-outform",
        "DER",
        "-aes192",
        _pem(tmp_path / "cert.pem", leaf.cert),
        stdin=CONTENT,
    )
    with pytest.raises(cms.CmsError, match="unsupported content cipher"):
        cms.decrypt(der, leaf.cert, leaf.key)


def _failures(attempt: Callable[[], object], tries: int = 8) -> list[str]:
    """The CmsError reasons of `tries` attempts. EnvelopedData has no integrity check
    (RFC 5652 §6), so a wrong content key shows only in the padding, which random plaintext
    passes about one time in 256: an attempt may "succeed" with garbage."""
    reasons = []
    for _ in range(tries):
        try:
            attempt()
        except cms.CmsError as exc:
            reasons.append(str(exc))
    return reasons


@pytest.mark.parametrize("cipher", CIPHERS)
def test_wrong_key_and_corrupted_key_fail_alike(
    leaf: Identity, stranger: Identity, cipher: cms.ContentCipher
) -> None:
    def corrupt(enveloped: asn1_cms.EnvelopedData) -> None:
        recipient = enveloped["recipient_infos"][0].chosen
        recipient["encrypted_key"] = bytes(len(recipient["encrypted_key"].native))

    def wrong_key() -> object:
        # Addressed to our certificate, but the key is not its key.
        der = cms.encrypt(CONTENT, [leaf.cert], cipher=cipher)
        return cms.decrypt(der, leaf.cert, stranger.key)

    def bad_block() -> object:
        der = _edit(cms.encrypt(CONTENT, [leaf.cert], cipher=cipher), corrupt)
        return cms.decrypt(der, leaf.cert, leaf.key)

    wrong, bad = _failures(wrong_key), _failures(bad_block)
    assert len(wrong) >= 6
    assert len(bad) >= 6
    # Bleichenbacher: the caller (and a SCEP client) must not learn which step failed.
    assert set(wrong) == set(bad) == {"cannot decrypt the envelope (wrong key or corrupted data)"}


def test_tampered_padding_is_a_cms_error(leaf: Identity) -> None:
    der = cms.encrypt(b"y" * 32, [leaf.cert], cipher="aes128")  # the pad is one whole block

    def flip_pad(enveloped: asn1_cms.EnvelopedData) -> None:
        info = enveloped["encrypted_content_info"]
        ciphertext = bytearray(info["encrypted_content"].native)
        ciphertext[-17] ^= 0x01  # CBC: turns the final 0x10 pad byte into 0x11
        info["encrypted_content"] = bytes(ciphertext)

    with pytest.raises(cms.CmsError, match="cannot decrypt"):
        cms.decrypt(_edit(der, flip_pad), leaf.cert, leaf.key)


def test_no_matching_recipient_among_several(
    ca: Identity, leaf: Identity, stranger: Identity
) -> None:
    der = cms.encrypt(CONTENT, [ca.cert, leaf.cert])
    with pytest.raises(cms.CmsError, match="no recipient"):
        cms.decrypt(der, stranger.cert, stranger.key)


def test_malformed_envelopes_are_cms_errors(leaf: Identity) -> None:
    good = cms.encrypt(CONTENT, [leaf.cert], cipher="des3")
    bad_inputs = [b"", b"garbage", good[:-5], cms.sign(b"x", leaf.cert, leaf.key)]
    bad_inputs += [
        good[:at] + bytes([good[at] ^ 0x41]) + good[at + 1 :] for at in range(0, len(good), 4)
    ]
    for bad in bad_inputs:
        with contextlib.suppress(cms.CmsError):
            cms.decrypt(bad, leaf.cert, leaf.key)
    with pytest.raises(cms.CmsError, match="expected CMS EnvelopedData"):
        cms.decrypt(bad_inputs[3], leaf.cert, leaf.key)


def test_encrypt_refuses_bad_arguments(leaf: Identity) -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        cms.encrypt(b"x", [])


# --- certs-only ----------------------------------------------------------------------


def test_certificates_only(ca: Identity, leaf: Identity) -> None:
    der = cms.certificates_only([leaf.cert, ca.cert])
    printed = _openssl("pkcs7", "-inform", "DER", "-print_certs", stdin=der).decode()
    assert "subject=CN = device" in printed
    assert "subject=CN = Test CA" in printed
    assert set(pkcs7.load_der_pkcs7_certificates(der)) == {leaf.cert, ca.cert}
    with pytest.raises(cms.CmsError):
        cms.verify(der)


def test_an_envelope_for_another_certificate_is_refused_every_time(
    leaf: Identity, stranger: Identity
) -> None:
    for _ in range(50):  # not "1 time in 256 garbage": decided on the recipient identifier
        der = cms.encrypt(CONTENT, [leaf.cert])
        with pytest.raises(cms.CmsError, match="no recipient"):
            cms.decrypt(der, stranger.cert, stranger.key)
