"""Profiles on the wire: serialize, sign (CMS SignedData with the chain), encrypt per device
(`EncryptedPayloadContent`: CMS EnvelopedData, AES-256, of the PayloadContent array as a
plist; protocol-notes §3f), and read any profile back, signed or not."""

from __future__ import annotations

import plistlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.pki import cms
from orchardist.plists import PlistError, load_dictionary


class ProfileReadError(ValueError):
    """Not a profile we can read; str(err) says why."""


@dataclass(frozen=True)
class ReadProfile:
    profile: dict[str, Any]
    signer: x509.Certificate | None  # None: the profile was not signed
    body: bytes  # the profile plist itself (inside the signature, when signed)


def serialize(profile: dict[str, Any]) -> bytes:
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=False)


def sign(
    body: bytes,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """What devices and Apple Configurator show as "Verified" when they trust the chain."""
    return cms.sign(body, cert, key, extra_certs=list(chain))


def encrypt_for(profile: dict[str, Any], recipient: x509.Certificate) -> dict[str, Any]:
    """The profile with its payloads readable only by the holder of `recipient`'s key."""
    content = plistlib.dumps(profile["PayloadContent"], fmt=plistlib.FMT_XML)
    outer = {k: v for k, v in profile.items() if k != "PayloadContent"}
    outer["IsEncrypted"] = True
    outer["EncryptedPayloadContent"] = cms.encrypt(content, [recipient], cipher="aes256")
    return outer


def decrypt_payloads(
    profile: dict[str, Any], cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> list[Any]:
    """What a device does with an encrypted profile (the simulator and the tests)."""
    opened = cms.decrypt(profile["EncryptedPayloadContent"], cert, key)
    content = plistlib.loads(opened.content)
    if not isinstance(content, list):
        raise ProfileReadError("EncryptedPayloadContent does not hold an array of payloads")
    return content


def read(data: bytes, *, trusted: Sequence[x509.Certificate] | None = None) -> ReadProfile:
    """A .mobileconfig as files come: XML or binary plist, or CMS-signed. A signature that
    does not verify is refused, never ignored."""
    signer = None
    body = data
    if not _looks_like_plist(data):
        try:
            signed = cms.verify(data, trusted=trusted)
        except cms.CmsError as exc:
            raise ProfileReadError(f"the profile's signature does not verify: {exc}") from exc
        body, signer = signed.content, signed.signer
    try:
        profile = load_dictionary(body)
    except PlistError as exc:
        raise ProfileReadError(f"not a configuration profile ({exc})") from exc
    return ReadProfile(profile, signer, body)


def _looks_like_plist(data: bytes) -> bool:
    head = data.lstrip()[:64]
    return head.startswith((b"<?xml", b"<plist", b"<!DOCTYPE", b"bplist"))


def kind_of(data: bytes, name: str = "") -> str:
    """What a file given to `profile validate` or `upload` is: "plist" (a .mobileconfig,
    XML or binary), "signed" (CMS, DER), "spec" (TOML) or "unknown"."""
    if _looks_like_plist(data):
        return "plist"
    if name.endswith(".toml"):
        return "spec"
    if data[:1] == b"\x30":  # a DER SEQUENCE: CMS ContentInfo
        return "signed"
    try:
        tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unknown"
    return "spec"
