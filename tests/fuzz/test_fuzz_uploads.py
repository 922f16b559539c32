"""Fuzzing what administrators and devices upload outside MDM messages: over-the-air
phase 2/3 bodies, .mobileconfig files (plain and signed) with the profile check that
follows, `profile build` TOML specs, .mobileprovision files and .ipa archives. Each input
is a valid one changed in its structure (plist tree, DER tree, zip members) or its bytes."""

from __future__ import annotations

import io
import plistlib
import struct
import tempfile
import warnings
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509
from hypothesis import example, given
from hypothesis import strategies as st

from orchardist.apps.ipa import read_ipa
from orchardist.apps.provisioning import (
    MAX_PROFILE_BYTES,
    ProvisioningError,
    read_mobileprovision,
)
from orchardist.apps.safezip import IpaError, IpaLimits
from orchardist.enroll.ota import OtaError, read_device_post
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.profiles import envelope
from orchardist.profiles.builders import SpecError
from orchardist.profiles.envelope import ProfileReadError
from orchardist.profiles.spec import build_profile, read_spec
from orchardist.profiles.validate import check_profile
from orchardist.scep.client import make_csr
from tests.apps.factory import (
    TEAM,
    build_ipa,
    build_mobileprovision,
    cgbi_png,
    profile_plist,
    sign_profile,
)
from tests.fuzz.der_mutations import der_mutated, with_digest_oid
from tests.fuzz.harness import bounded_call, fuzzing, traced
from tests.keys import rsa_key
from tests.web.mutation_seeds import OTA_ATTRIBUTES
from tests.web.mutations import flipped, mutated, written

NOW = datetime.now(UTC)
UDID = "00008110-000A1C2E3E88801E"
OURS = CertificateAuthority(*generate_ca("Fuzz OTA CA", "Orchardist tests"))
APPLE = CertificateAuthority(*generate_ca("Stand-in Apple device CA", "Orchardist tests"))
KEY = rsa_key(172)
PHASE_3 = OURS.issue_client_certificate(make_csr(KEY, UDID), validity_days=30, now=NOW)
PHASE_2 = APPLE.issue_client_certificate(make_csr(KEY, UDID), validity_days=30, now=NOW)
ATTRIBUTES = {"UDID": UDID, **OTA_ATTRIBUTES}


def _signed_by(cert: x509.Certificate) -> Any:
    return lambda content: cms.sign(content, cert, KEY)


def _ota_posts() -> st.SearchStrategy[bytes]:
    trees = mutated(ATTRIBUTES).flatmap(written)
    signer = st.sampled_from([PHASE_2, PHASE_3])
    tree_level = st.tuples(trees, signer).map(lambda pair: _signed_by(pair[1])(pair[0]))
    seeds = [_signed_by(c)(plistlib.dumps(ATTRIBUTES)) for c in (PHASE_2, PHASE_3)]
    return tree_level | st.sampled_from(seeds).flatmap(der_mutated)


@fuzzing(100)
@given(body=_ota_posts())
def test_over_the_air_posts(body: bytes) -> None:
    with traced():
        bounded_call("enroll.read_device_post", lambda: read_device_post(
            body, ours=OURS.certificate, extra_anchors=[APPLE.certificate]), (OtaError,),
            size=len(body))  # fmt: skip


PROFILE_SPEC: dict[str, Any] = {
    "identifier": "com.example.wifi",
    "name": "Office Wi-Fi",
    "payloads": [
        {"type": "wifi", "SSID_STR": "Office", "EncryptionType": "WPA2",
         "Password": {"file": "secret.txt"}},
        {"type": "wifi", "SSID_STR": "Lab", "EncryptionType": "WPA2",
         "Password": {"file": "binary.bin"}},
        {"type": "wifi", "SSID_STR": "Guest", "EncryptionType": "WPA2",
         "Password": {"env": "GUEST_PASSWORD"}},
    ],
}  # fmt: skip
ENV = {"GUEST_PASSWORD": "guest-password"}
PROFILE = build_profile(
    {**PROFILE_SPEC, "payloads": [{"type": "wifi", "SSID_STR": "Office"}]}, base_dir=Path(), env={}
)
PLAIN = envelope.serialize(PROFILE)
SIGNED = envelope.sign(PLAIN, PHASE_3, KEY, [OURS.certificate])


def mobileconfigs() -> st.SearchStrategy[bytes]:
    trees = mutated(PROFILE).flatmap(written)
    return st.one_of(
        trees, trees, trees.map(_signed_by(PHASE_3)), st.just(SIGNED).flatmap(der_mutated)
    )


@fuzzing(100)
@given(data=mobileconfigs())
def test_mobileconfig_uploads(data: bytes) -> None:
    """What an upload goes through: the reader, then the profile check."""
    with traced():
        read = bounded_call("profiles.envelope.read", lambda: envelope.read(data),
                            (ProfileReadError,), size=len(data))  # fmt: skip
        if read is not None:
            bounded_call("profiles.check_profile", lambda: check_profile(read.profile), (),
                         size=len(data))  # fmt: skip


def _toml(tree: dict[str, Any]) -> str:
    try:
        return tomli_w.dumps(tree)
    except (TypeError, ValueError):  # bytes, NaN keys…: TOML cannot say it; the seed then
        return tomli_w.dumps(PROFILE_SPEC)


def _specs() -> st.SearchStrategy[bytes]:
    text = tomli_w.dumps(PROFILE_SPEC).encode()
    return st.one_of(
        mutated(PROFILE_SPEC).map(lambda tree: _toml(tree).encode()),
        mutated(PROFILE_SPEC).map(lambda tree: _toml(tree).encode()),
        st.just(text).flatmap(flipped),
    )


@fuzzing(100)
@given(spec=_specs())
def test_profile_specs(spec: bytes, tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("spec", numbered=True)
    (folder / "secret.txt").write_text("office-password\n")
    (folder / "binary.bin").write_bytes(b"\xff\xfe\x00password")
    (folder / "spec.toml").write_bytes(spec)

    def build() -> dict[str, Any]:
        return build_profile(read_spec(folder / "spec.toml"), base_dir=folder, env=ENV)

    bounded_call("profiles.spec", build, (SpecError,))


def _provisioning() -> st.SearchStrategy[bytes]:
    trees = mutated(profile_plist()).flatmap(written).map(sign_profile)
    return trees | st.just(build_mobileprovision()).flatmap(der_mutated)


@fuzzing(100)
@given(data=_provisioning())
def test_mobileprovision(data: bytes) -> None:
    with traced():
        bounded_call("apps.read_mobileprovision", lambda: read_mobileprovision(
            data, trusted_roots=[TEAM.ca_cert]), (ProvisioningError,), size=len(data))  # fmt: skip


def _ipa_members(icon: bool) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = build_ipa(Path(folder) / "seed.ipa", icon=icon)
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
    # Icons are converted in pure Python, per pixel: the factory's 120 and 180 px icons
    # cost a fifth of a second each under tracemalloc, most of this target's time. Icons of
    # 10 and 15 px take every step of the conversion (the CgBI chunk, all five row filters,
    # premultiplied alpha) in a hundredth of that.
    for name in members:
        if name.endswith("@2x.png"):
            members[name] = cgbi_png(10, 10)
        elif name.endswith("@3x.png"):
            members[name] = cgbi_png(15, 15)
    return members


SEEDS = [_ipa_members(icon=True), _ipa_members(icon=True), _ipa_members(icon=False)]
INFO = next(name for name in SEEDS[0] if name.endswith(".app/Info.plist"))
PROFILE_MEMBER = next(name for name in SEEDS[0] if name.endswith(".mobileprovision"))


def _zipped(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": the duplicate is the point
        for member, content in members:
            archive.writestr(member or "x", content)
    return out.getvalue()


def _oid_bomb(der: bytes) -> bytes:
    """The profile with its signer's digest algorithm an OBJECT IDENTIFIER of 300,000
    bytes: asn1crypto decodes it into 300,000 arcs (20 MB at the peak, 66 bytes per byte)
    to name it in the refusal. A .ipa of a few KB then made the reader allocate more than
    a bound on the .ipa's own size allows (19.8 MB for 24 KB); such OIDs are now refused
    undecoded (orchardist.pki.asn1_limits). Found by `make fuzz`."""
    return with_digest_oid(der, b"A" * 300_000)


OID_BOMB = _zipped(
    [(name, _oid_bomb(data) if name == PROFILE_MEMBER else data) for name, data in SEEDS[0].items()]
)


def _needs_version(archive: bytes, version: int) -> bytes:
    """The archive with each central directory entry's "version needed to extract" set:
    zipfile raises NotImplementedError past 6.3 (the long run made a 6.4)."""
    found = bytearray(archive)
    at = found.find(b"PK\x01\x02")
    while at >= 0:
        found[at + 6 : at + 8] = version.to_bytes(2, "little")
        at = found.find(b"PK\x01\x02", at + 4)
    return bytes(found)


FUTURE_ZIP = _needs_version(_zipped(list(SEEDS[0].items())), 64)


def _read_whole(data: bytes) -> int:
    """At most what read_ipa inflates into memory rather than streams, by the sizes the
    archive declares (the reader holds members to them): Info.plist, the embedded profile
    and an icon (any of the PNGs), each within its cap. The readers of those members are
    held to the usual bound for what they read, on top of the .ipa's own bytes."""
    caps = {"/Info.plist": IpaLimits().max_info_plist, ".mobileprovision": MAX_PROFILE_BYTES,
            ".png": IpaLimits().max_icon}  # fmt: skip
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError, struct.error, zlib.error):  # fmt: skip
        return 0  # refused before any member is read (safezip refuses what zipfile raises)
    return sum(min(info.file_size, cap) for info in infos for suffix, cap in caps.items()
               if info.filename.endswith(suffix))  # fmt: skip


@st.composite
def _ipas(draw: st.DrawFn) -> bytes:
    """The seed .ipa with its members changed: Info.plist's tree, a member's bytes (an
    icon, the embedded profile), a member dropped or renamed (traversal, duplicates,
    another app folder); then zipped, and one time in six the archive's bytes flipped."""
    seed = draw(st.sampled_from(SEEDS))
    members = list(seed.items())
    action = draw(st.sampled_from(["info", "info", "bytes", "der", "drop", "rename"]))
    at = draw(st.integers(0, len(members) - 1))
    name, data = members[at]
    if action == "info":
        tree = plistlib.loads(seed[INFO])
        members = [(n, d) for n, d in members if n != INFO]
        members.append((INFO, draw(written(draw(mutated(tree))))))
    elif action == "bytes":
        members[at] = (name, draw(flipped(data)))
    elif action == "der":
        members = [(n, draw(der_mutated(d)) if n.endswith(".mobileprovision") else d)
                   for n, d in members]  # fmt: skip
    elif action == "drop":
        del members[at]
    else:
        new = draw(st.sampled_from(["../evil", "/abs", "Payload/Other.app/x", name, ""]))
        members.append((new + draw(st.sampled_from(["", "/Info.plist", ".app"])), data))
    body = _zipped(members)
    return draw(flipped(body)) if draw(st.integers(0, 5)) == 0 else body


@fuzzing(30)
@given(data=_ipas())
@example(data=OID_BOMB)
@example(data=FUTURE_ZIP)
def test_ipa_uploads(data: bytes) -> None:
    with traced():
        bounded_call("apps.read_ipa", lambda: read_ipa(io.BytesIO(data),
                     trusted_roots=[TEAM.ca_cert]), (IpaError,),
                     size=len(data) + _read_whole(data))  # fmt: skip
