"""orchardist.apps.provisioning: profiles signed by the test team are read and verified;
tampered, forged and malformed ones are refused with a reason."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.apps.provisioning import (
    ProvisioningError,
    days_left,
    describe_expiry,
    matches_bundle,
    read_mobileprovision,
)
from tests.apps.factory import (
    TEAM,
    TEAM_ID,
    build_mobileprovision,
    certificate,
    profile_plist,
    sign_profile,
    x509_name,
)
from tests.keys import rsa_key

NOW = datetime.now(UTC)


def test_an_in_house_profile_is_read() -> None:
    expires = (NOW + timedelta(days=200)).replace(microsecond=0)
    data = build_mobileprovision(expires_at=expires, name="Expenses In House")
    profile = read_mobileprovision(data)
    assert profile.name == "Expenses In House"
    assert (profile.team_id, profile.team_name) == (TEAM_ID, "Example Corp")
    assert profile.app_id == f"{TEAM_ID}.com.example.expenses"
    assert profile.bundle_pattern == "com.example.expenses"
    assert profile.app_id_name == "Expenses"
    assert profile.expires_at == expires
    assert profile.created_at < NOW
    assert profile.provisions_all_devices
    assert profile.devices == ()
    assert profile.platforms == ("iOS",)
    assert profile.raw == data
    assert len(profile.uuid) == 36
    assert "iPhone Distribution: Example Corp (ABCDE12345)" in profile.signer_subject
    assert not profile.signer_trusted  # no roots given: integrity only
    (certificate,) = profile.developer_certificates
    assert certificate.common_name == "iPhone Distribution: Example Corp (ABCDE12345)"
    assert certificate.not_after == TEAM.cert.not_valid_after_utc
    assert len(certificate.sha1) == 40


def test_a_device_list_profile_is_read() -> None:
    udids = ["00008110-000A1B2C3D4E5F60", "00008030-001122334455802E"]
    profile = read_mobileprovision(build_mobileprovision(devices=udids))
    assert not profile.provisions_all_devices
    assert profile.devices == tuple(udids)


def test_trusted_roots_check_the_signer_chain() -> None:
    data = build_mobileprovision()
    assert read_mobileprovision(data, trusted_roots=[TEAM.ca_cert]).signer_trusted
    root = x509_name("Another Root", "Elsewhere")
    other_root = certificate(root, root, rsa_key(141), rsa_key(141), days=30, ca=True)
    with pytest.raises(ProvisioningError, match="not issued by a trusted CA"):
        read_mobileprovision(data, trusted_roots=[other_root])


def test_tampered_content_is_refused() -> None:
    data = build_mobileprovision(app_id=f"{TEAM_ID}.com.example.expenses")
    forged = data.replace(b"com.example.expenses", b"com.example.expensez")
    assert forged != data
    with pytest.raises(ProvisioningError, match="message digest mismatch"):
        read_mobileprovision(forged)


def test_a_wrong_signature_is_refused() -> None:
    data = bytearray(build_mobileprovision())
    # The signature is the last OCTET STRING of the SignerInfo, at the end of the DER.
    data[-5] ^= 0x01
    with pytest.raises(ProvisioningError, match="signature does not verify"):
        read_mobileprovision(bytes(data))


def test_a_signer_certificate_swapped_for_a_lookalike_is_refused() -> None:
    # Same issuer and serial (so it is taken for the signer), another key: the signature
    # made with the team's key cannot verify under it.
    now = datetime.now(UTC)
    lookalike = x509.CertificateBuilder(
        issuer_name=TEAM.cert.issuer,
        subject_name=TEAM.cert.subject,
        public_key=rsa_key(140).public_key(),
        serial_number=TEAM.cert.serial_number,
        not_valid_before=now - timedelta(days=1),
        not_valid_after=now + timedelta(days=30),
    ).sign(rsa_key(140), hashes.SHA256())
    info = asn1_cms.ContentInfo.load(build_mobileprovision())
    info["content"]["certificates"] = asn1_cms.CertificateSet(
        [asn1_x509.Certificate.load(lookalike.public_bytes(Encoding.DER))]
    )
    with pytest.raises(ProvisioningError, match="signature does not verify"):
        read_mobileprovision(info.dump(force=True))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a provisioning profile"),
        (b"<?xml version='1.0'?><plist><dict/></plist>", "not a provisioning profile"),
        (b"\x30\x03\x02\x01\x01", "not a provisioning profile"),
        (b"x" * (1024 * 1024 + 1), "real ones are a few KB"),
    ],
)
def test_malformed_input_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ProvisioningError, match=reason):
        read_mobileprovision(data)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a plist", "not a property list"),
        (plistlib.dumps(["a", "list"]), "not a dictionary"),
        (plistlib.dumps({"Name": "only a name"}), "no valid UUID"),
    ],
)
def test_signed_content_that_is_not_a_profile_is_refused(content: bytes, reason: str) -> None:
    with pytest.raises(ProvisioningError, match=reason):
        read_mobileprovision(sign_profile(content))


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("TeamIdentifier", "no TeamIdentifier"),
        ("Entitlements", "no application-identifier"),
        ("ExpirationDate", "no valid ExpirationDate"),
    ],
)
def test_a_profile_missing_a_required_key_is_refused(drop: str, reason: str) -> None:
    body = profile_plist()
    del body[drop]
    with pytest.raises(ProvisioningError, match=reason):
        read_mobileprovision(sign_profile(plistlib.dumps(body)))


@pytest.mark.parametrize(
    ("app_id", "bundle_id", "matches"),
    [
        ("ABCDE12345.com.example.expenses", "com.example.expenses", True),
        ("ABCDE12345.com.example.expenses", "com.example.expenses2", False),
        ("ABCDE12345.com.example.expenses", "com.example", False),
        ("ABCDE12345.*", "com.anything.at.all", True),
        ("ABCDE12345.com.example.*", "com.example.expenses", True),
        ("ABCDE12345.com.example.*", "com.example", False),
        ("ABCDE12345.com.example.*", "com.examples.other", False),
        ("ABCDE12345.com.example.expenses", "COM.EXAMPLE.EXPENSES", False),
    ],
)
def test_app_id_matching(app_id: str, bundle_id: str, matches: bool) -> None:
    profile = read_mobileprovision(build_mobileprovision(app_id=app_id))
    assert matches_bundle(profile, bundle_id) is matches


@pytest.mark.parametrize(
    ("offset", "words", "days"),
    [
        (timedelta(days=40, hours=1), "expires in 40 days", 40),
        (timedelta(days=1, hours=1), "expires in 1 day", 1),
        (timedelta(hours=5), "expires today", 0),
        (timedelta(hours=-5), "expired today", -1),
        (timedelta(days=-1, hours=-1), "expired 1 day ago", -2),
        (timedelta(days=-3, hours=-1), "expired 3 days ago", -4),
    ],
)
def test_expiry_in_words(offset: timedelta, words: str, days: int) -> None:
    assert describe_expiry(NOW + offset, NOW) == words
    assert days_left(NOW + offset, NOW) == days


def test_an_expired_profile_is_read_and_reported_expired() -> None:
    expired = read_mobileprovision(build_mobileprovision(expires_at=NOW - timedelta(days=2)))
    assert expired.expiry(NOW).startswith("expired 2 days ago")


def test_indefinite_length_ber_is_read() -> None:
    # CMS may arrive as BER (RFC 5652 §1.2): indefinite lengths and the content as a
    # chunked OCTET STRING, as OpenSSL's streaming signer writes it.
    der = build_mobileprovision(name="In BER")
    assert read_mobileprovision(_as_indefinite_ber(der)).name == "In BER"


def _as_indefinite_ber(der: bytes) -> bytes:
    """ContentInfo, SignedData and encapContentInfo re-encoded with indefinite lengths,
    the content split into 100-byte OCTET STRING chunks."""

    def indefinite(tag: bytes, content: bytes) -> bytes:
        return tag + b"\x80" + content + b"\x00\x00"

    def children(body: bytes) -> list[bytes]:
        found = []
        while body:
            length = parser.peek(body)
            found.append(body[:length])
            body = body[length:]
        return found

    content_type, explicit = children(parser.parse(der)[4])
    signed_data = children(parser.parse(parser.parse(explicit)[4])[4])
    encap_type, encap_explicit = children(parser.parse(signed_data[2])[4])
    content = parser.parse(parser.parse(encap_explicit)[4])[4]
    chunks = b"".join(
        b"\x04" + bytes([len(content[i : i + 100])]) + content[i : i + 100]
        for i in range(0, len(content), 100)
    )
    signed_data[2] = indefinite(
        b"\x30", encap_type + indefinite(b"\xa0", indefinite(b"\x24", chunks))
    )
    return indefinite(
        b"\x30", content_type + indefinite(b"\xa0", indefinite(b"\x30", b"".join(signed_data)))
    )
