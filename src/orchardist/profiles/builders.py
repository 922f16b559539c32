"""Friendly payload types: short names for the payloads IT staff use most, the boilerplate
filled in, and a few conversions (certificate files, the APN carrier dictionary).

Everything else is Apple's own keys, checked against Apple's schema afterwards: a builder
never invents a key list of its own.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.schema.validate import mdm_schema


class SpecError(ValueError):
    """A spec we cannot build; str(err) names the key path. `problems` lists each problem
    (one, or every schema problem of the built profile)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


@dataclass(frozen=True)
class Friendly:
    payload_type: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    convert: Callable[[dict[str, Any], str], dict[str, Any]] | None = None


def _der_certificate(payload: dict[str, Any], path: str) -> dict[str, Any]:
    """PKCS#1 / root payloads carry DER; accept PEM too (what admins usually have)."""
    content = payload.get("PayloadContent")
    if isinstance(content, bytes) and content.lstrip().startswith(b"-----BEGIN"):
        try:
            cert = x509.load_pem_x509_certificate(content)
        except ValueError as exc:
            raise SpecError(f"{path}.PayloadContent: not a PEM certificate") from exc
        payload["PayloadContent"] = cert.public_bytes(Encoding.DER)
    elif isinstance(content, bytes):
        try:
            x509.load_der_x509_certificate(content)
        except ValueError as exc:
            raise SpecError(f"{path}.PayloadContent: not a DER or PEM certificate") from exc
    return payload


# iOS 4's APN payload: a carrier-defaults dictionary, spelled out in Apple's profile reference.
_APN_FIELDS = {"name": "apn", "username": "username", "password": "password",
               "proxy": "proxy", "proxy_port": "proxyPort"}  # fmt: skip


def _apn(payload: dict[str, Any], path: str) -> dict[str, Any]:
    if "DefaultsData" in payload:
        return payload
    if "name" not in payload:
        raise SpecError(f"{path}.name: the access point name is required")
    entry = {_APN_FIELDS[k]: payload.pop(k) for k in list(payload) if k in _APN_FIELDS}
    if isinstance(entry.get("password"), str):  # Apple's schema: <data>
        entry["password"] = entry["password"].encode()
    payload["DefaultsDomainName"] = "com.apple.managedCarrier"
    payload["DefaultsData"] = {"apns": [entry]}
    return payload


FRIENDLY: dict[str, Friendly] = {
    "passcode": Friendly("com.apple.mobiledevice.passwordpolicy", "passcode policy"),
    "restrictions": Friendly("com.apple.applicationaccess", "restrictions"),
    "wifi": Friendly(
        "com.apple.wifi.managed",
        "Wi-Fi: WPA2 personal (Password) or enterprise (EAPClientConfiguration)",
        {"AutoJoin": True, "HIDDEN_NETWORK": False},
    ),
    "vpn": Friendly("com.apple.vpn.managed", "VPN: VPNType IPSec (Cisco), L2TP or IKEv2"),
    "mail": Friendly("com.apple.mail.managed", "IMAP or POP mail account"),
    "exchange": Friendly("com.apple.eas.account", "Exchange ActiveSync account", {"SSL": True}),
    "ldap": Friendly(
        "com.apple.ldap.account", "LDAP directory account", {"LDAPAccountUseSSL": True}
    ),
    "caldav": Friendly(
        "com.apple.caldav.account", "CalDAV calendar account", {"CalDAVUseSSL": True}
    ),
    "subscribed-calendar": Friendly(
        "com.apple.subscribedcalendar.account", "subscribed calendar", {"SubCalAccountUseSSL": True}
    ),
    "webclip": Friendly(
        "com.apple.webClip.managed", "web clip (home-screen link)", {"IsRemovable": True}
    ),
    "certificate": Friendly(
        "com.apple.security.pkcs1", "a certificate (DER or PEM file)", convert=_der_certificate
    ),
    "root-certificate": Friendly(
        "com.apple.security.root", "a root CA certificate to trust", convert=_der_certificate
    ),
    "pkcs12": Friendly("com.apple.security.pkcs12", "an identity: certificate and key (.p12)"),
    "scep": Friendly("com.apple.security.scep", "an identity requested over SCEP"),
    "apn": Friendly(
        "com.apple.apn.managed",
        "cellular access point (name, username, password, proxy, proxy_port)",
        convert=_apn,
    ),
    "cellular": Friendly("com.apple.cellular", "cellular settings (iOS 7 and later)"),
    "mdm": Friendly("com.apple.mdm", "MDM enrollment", {"SignMessage": True}),
    "removal-password": Friendly(
        "com.apple.profileRemovalPassword", "password to remove the profile"
    ),
}


def build_payload(
    entry: dict[str, Any], *, profile_identifier: str, index: int, path: str
) -> dict[str, Any]:
    """One payload from a spec entry (`type` a friendly name or a PayloadType, the rest
    Apple's keys with secrets already resolved)."""
    payload = dict(entry)
    kind = str(payload.pop("type", payload.get("PayloadType", "")))
    friendly = FRIENDLY.get(kind)
    payload_type = friendly.payload_type if friendly else kind
    if not payload_type or (friendly is None and payload_type not in mdm_schema().profiles):
        raise SpecError(
            f"{path}.type: {kind!r} is neither a friendly type ({', '.join(FRIENDLY)}) nor "
            "a PayloadType Apple defines"
        )
    if friendly is not None:
        payload = {**friendly.defaults, **payload}
        if friendly.convert is not None:
            payload = friendly.convert(payload, path)
    short = kind if friendly else payload_type.rsplit(".", 1)[-1]
    identifier = payload.pop("identifier", f"{profile_identifier}.{short}.{index}")
    title = friendly.summary.split(":")[0].split(" (")[0] if friendly else short
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        # Stable across builds of the same spec, so a new version replaces the payload.
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier}")).upper(),
        "PayloadDisplayName": payload.pop("name", title),
        **payload,
    }


def decode_base64(value: str, path: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise SpecError(f'{path}: data must be base64, or {{ file = "…" }}') from exc
