"""A virtual device walking over-the-air enrollment like an iPhone in Safari: sign in on
/enroll, accept, fetch the Profile Service payload, POST its attributes signed with its
"Apple" device certificate (issued by a test device CA the server trusts), enroll a SCEP
identity, POST again signed with it, decrypt the final profile, then enroll for MDM."""

from __future__ import annotations

import asyncio
import dataclasses
import plistlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from orchardist.pki import cms
from orchardist.profiles import envelope
from orchardist.simulator.device import SimulationError, VirtualDevice
from orchardist.simulator.profile import read_profile

_SESSION = re.compile(r'name=session value="([^"]+)"')


@dataclass(frozen=True)
class OtaLogin:
    base_url: str  # where /enroll is, e.g. http://127.0.0.1:8080
    user: str
    password: str
    device_ca: tuple[x509.Certificate, rsa.RSAPrivateKey]  # plays Apple's iPhone Device CA


async def enroll_over_the_air(device: VirtualDevice, login: OtaLogin) -> None:
    http, base = device.http, login.base_url.rstrip("/")
    signed_in = await http.post(f"{base}/enroll", data={"user": login.user,
                                                        "password": login.password})  # fmt: skip
    found = _SESSION.search(signed_in.text)
    if signed_in.status_code != 200 or found is None:
        raise SimulationError(f"sign-in refused ({signed_in.status_code})")
    session = found.group(1)
    await http.post(f"{base}/enroll/install", data={"session": session})
    service = _signed_plist(await http.get(f"{base}/enroll/profile",
                                            params={"session": session}))  # fmt: skip
    content = service["PayloadContent"]
    ota_url = _moved(content["URL"], base)
    attributes = {
        "UDID": device.udid, "CHALLENGE": content["Challenge"], "SERIAL": device.serial,
        "PRODUCT": device.product, "VERSION": "8L1", "DEVICE_NAME": f"{device.model_name}",
        "IMEI": "01 234567 890123 4",
    }  # fmt: skip
    apple_cert = _apple_certificate(device, *login.device_ca)
    phase2 = await _post(http, ota_url, attributes, apple_cert, device.key)
    scep = next(
        p for p in phase2["PayloadContent"] if p["PayloadType"] == "com.apple.security.scep"
    )
    # Phase 2's identity (CN=UDID), with the challenge the server just issued.
    device.plan = dataclasses.replace(
        device.plan, scep_url=_moved(scep["PayloadContent"]["URL"], base),
        challenge=scep["PayloadContent"]["Challenge"],
    )  # fmt: skip
    identity = await device._scep()
    final = await _post(http, ota_url, attributes, identity, device.key)
    final["PayloadContent"] = envelope.decrypt_payloads(final, identity, device.key)
    del final["EncryptedPayloadContent"]
    plan = read_profile(plistlib.dumps(final))
    device.plan = dataclasses.replace(
        plan, scep_url=_moved(plan.scep_url, base), checkin_url=_moved(plan.checkin_url, base),
        server_url=_moved(plan.server_url, base),
    )  # fmt: skip
    # The MDM identity gets its own key, as on iOS (a second SCEP enrollment with the OTA
    # key would reuse its transaction ID for another CSR, which SCEP rightly refuses).
    device.key = await asyncio.to_thread(rsa.generate_private_key, 65537, plan.key_size)
    await device.enroll()  # SCEP for the MDM identity, Authenticate, TokenUpdate


async def _post(
    http: httpx.AsyncClient, url: str, attributes: dict[str, Any], cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
) -> dict[str, Any]:  # fmt: skip
    body = cms.sign(plistlib.dumps(attributes), cert, key)
    reply = await http.post(url, content=body,
                            headers={"Content-Type": "application/pkcs7-signature"})  # fmt: skip
    if reply.status_code != 200:
        raise SimulationError(f"{url} refused the attributes: {reply.text.strip()}")
    return _signed_plist(reply)


def _signed_plist(reply: httpx.Response) -> dict[str, Any]:
    if reply.status_code != 200:
        raise SimulationError(f"{reply.url} answered {reply.status_code}: {reply.text[:200]}")
    profile: dict[str, Any] = plistlib.loads(cms.verify(reply.content).content)
    return profile


def _apple_certificate(
    device: VirtualDevice, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device.udid)]))
        .issuer_name(ca.subject)
        .public_key(device.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(ca_key, hashes.SHA256())
    )


def _moved(url: str, base: str) -> str:
    """The server's public URL, reached at `base` instead (tests behind plain HTTP)."""
    parts, target = urlsplit(url), urlsplit(base)
    query = f"?{parts.query}" if parts.query else ""
    return f"{target.scheme}://{target.netloc}{parts.path}{query}"
