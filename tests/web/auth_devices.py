"""The device side of the authentication matrix (test_auth_matrix.py): one fleet per server,
and for each device endpoint a request made with each kind of identity.

The identities, always asking as the victim unless the kind itself is about another
device: none at all, a garbage signature, a valid signature by a certificate we did not
issue, another enrolled device's certificate, an expired certificate our CA issued for the
victim (one that would otherwise move the enrollment to itself), a revoked one (a device
that enrolled, then had its certificate revoked, speaking as itself), a certificate of ours
never bound by an Authenticate (speaking as itself), and the victim's own.
"""

from __future__ import annotations

import base64
import plistlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from orchardist.apps.links import LinkSigner
from orchardist.apps.urls import AppUrls
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep.client import make_csr
from orchardist.scep.issuance import Binding
from orchardist.storage.apps import AppVersion
from tests.keys import rsa_key
from tests.web.mdm_server import CHECKIN, Device, Server
from tests.web.stored_apps import store_app

IDENTITIES = ("none", "garbage", "stranger", "other_device", "expired", "revoked", "unbound",
              "right")  # fmt: skip
TOPIC = "com.apple.mgmt.t"
OTA_UDID = "UDID-OTA-MATRIX"


@dataclass
class Fleet:
    """Who the requests come from, and what must never reach the wrong one."""

    server: Server
    victim: Device
    attacker: Device
    expired: Device  # our CA, issued for the victim's UDID, expired
    revoked: Device  # enrolled, then its certificate revoked
    unbound: Device  # our CA, never sent Authenticate
    stranger: Device  # another CA, naming the victim's UDID
    victim_command: str
    attacker_command: str
    app: AppVersion
    other_app: AppVersion
    apple: tuple[x509.Certificate, rsa.RSAPrivateKey]  # plays Apple's device CA for OTA

    def speaker(self, identity: str) -> Device | None:
        """The key and certificate a request is signed with, and the UDID it names."""
        borrowed = Device(self.victim.udid, self.attacker.key, self.attacker.cert)
        posing = {"stranger": self.stranger, "expired": self.expired, "other_device": borrowed}
        itself = {"revoked": self.revoked, "unbound": self.unbound, "right": self.victim}
        return posing.get(identity) or itself.get(identity)


def _stranger_ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("Stranger CA", "Not us"))


def _self_signed_ca(name: str, key: rsa.RSAPrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip


def apple_device_ca(folder: Path) -> tuple[Path, x509.Certificate, rsa.RSAPrivateKey]:
    """A CA playing Apple's iPhone Device CA (its file goes to ota_device_anchor_files)."""
    key = rsa_key(240)
    cert = _self_signed_ca("Matrix iPhone Device CA", key)
    path = folder / "matrix-device-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


async def make_fleet(
    server: Server, folder: Path, apple: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> Fleet:
    victim, attacker = await server.device("UDID-VICTIM", 241), await server.device("UDID-ATT", 242)
    revoked = await server.device("UDID-REVOKED", 243)
    for device in (victim, attacker, revoked):
        await server.enroll(device)
    await server.services.storage.revoke_certificate(revoked.cert.serial_number, datetime.now(UTC))
    expired = await server.device("UDID-VICTIM", 244, days=1, ago=5,
                                  binding=Binding(device_id="UDID-VICTIM"))  # fmt: skip
    unbound = await server.device("UDID-UNBOUND", 245)
    stranger_ca, stranger_key = _stranger_ca(), rsa_key(246)
    stranger_cert = stranger_ca.issue_client_certificate(
        make_csr(stranger_key, "UDID-VICTIM"), validity_days=30, now=datetime.now(UTC)
    )
    victim_command = await server.queue("DeviceInformation", {"Queries": ["DeviceName"]}, victim)
    attacker_command = await server.queue("SecurityInfo", {}, attacker)
    app = await store_app(server.services, folder, version="1.0", build="1")
    other = await store_app(server.services, folder, bundle_id="com.example.other", version="2.0")
    return Fleet(server, victim, attacker, expired, revoked, unbound,
                 Device("UDID-VICTIM", stranger_key, stranger_cert), victim_command,
                 attacker_command, app, other, apple)  # fmt: skip


# /mdm/checkin and /mdm/connect ---------------------------------------------------------


async def mdm_request(fleet: Fleet, path: str, identity: str) -> httpx.Response:
    """A TokenUpdate to /mdm/checkin or an Idle to /mdm/connect, in the speaker's name."""
    speaker = fleet.speaker(identity)
    udid = fleet.victim.udid if speaker is None else speaker.udid
    if path == "/mdm/checkin":
        fields = {"MessageType": "TokenUpdate", "UDID": udid, "Topic": TOPIC,
                  "Token": b"\x07" * 32, "PushMagic": "M"}  # fmt: skip
        content_type = CHECKIN
    else:
        fields, content_type = {"Status": "Idle", "UDID": udid}, "application/x-apple-aspen-mdm"
    body = plistlib.dumps(fields)
    if speaker is not None:
        headers = speaker.headers(body, content_type)
    else:
        headers = {"Content-Type": content_type}
        if identity == "garbage":
            headers["Mdm-Signature"] = base64.b64encode(b"\x30\x82garbage" * 20).decode()
    return await fleet.server.http.put(path, content=body, headers=headers)


# /enroll/ota (phase 3, signed by the SCEP identity) --------------------------------------


async def _phase_two_done(fleet: Fleet, *, phase_two: bool = True) -> str:
    """A fresh challenge whose phase 2 (signed by the device's Apple certificate) is done."""
    ota = fleet.server.services.ota
    assert ota is not None
    link, _ = await ota.invitation_link("matrix-user", timedelta(hours=1))
    session = link.rsplit("=", 1)[1]
    service = await fleet.server.http.get("/enroll/profile", params={"session": session})
    assert service.status_code == 200, service.text
    challenge: str = plistlib.loads(cms.verify(service.content).content)["PayloadContent"][
        "Challenge"
    ]
    if phase_two:
        key = rsa_key(247)
        apple = _device_cert(fleet.apple, key, OTA_UDID)
        answer = await _ota_post(fleet, challenge, apple, key)
        assert answer.status_code == 200, answer.text
    return challenge


def _device_cert(
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey], key: rsa.RSAPrivateKey, cn: str
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer[0].subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(issuer[1], hashes.SHA256())
    )  # fmt: skip


async def _ota_post(
    fleet: Fleet, challenge: str, cert: x509.Certificate, key: rsa.RSAPrivateKey,
    udid: str = OTA_UDID,
) -> httpx.Response:  # fmt: skip
    body = cms.sign(plistlib.dumps({"UDID": udid, "CHALLENGE": challenge}), cert, key)
    return await fleet.server.http.post("/enroll/ota", content=body)


async def ota_request(fleet: Fleet, identity: str) -> httpx.Response:
    """Phase 3 for OTA_UDID, after its phase 2 (for "unbound": without it)."""
    challenge = await _phase_two_done(fleet, phase_two=identity != "unbound")
    attributes = plistlib.dumps({"UDID": OTA_UDID, "CHALLENGE": challenge})
    if identity in ("none", "garbage"):
        body = attributes if identity == "none" else b"\x30\x82garbage" * 20
        return await fleet.server.http.post("/enroll/ota", content=body)
    server, key = fleet.server, rsa_key(248)
    if identity == "stranger":
        return await _ota_post(fleet, challenge, fleet.stranger.cert, fleet.stranger.key)
    if identity == "other_device":
        return await _ota_post(fleet, challenge, fleet.attacker.cert, fleet.attacker.key)
    days, ago = (1, 5) if identity == "expired" else (30, 0)
    mine = await server.device(OTA_UDID, 248, days=days, ago=ago,
                               binding=Binding(device_id=OTA_UDID))  # fmt: skip
    if identity == "revoked":
        await server.services.storage.revoke_certificate(mine.cert.serial_number, datetime.now(UTC))
    return await _ota_post(fleet, challenge, mine.cert, key)


# /apps/manifest, /apps/files, /apps/icons (signed links) --------------------------------

LinkMaker = Callable[[AppUrls, AppVersion], str]
LINKS: dict[str, LinkMaker] = {
    "/apps/manifest/{bundle_id}/{version_id:int}.plist": lambda urls, v: urls.manifest_url(
        v.bundle_id, v.version_id
    ),
    "/apps/files/{sha256}.ipa": lambda urls, v: urls.ipa_url(v.sha256),
    "/apps/icons/{sha256}.png": lambda urls, v: urls.icon_url(v.icon_sha256 or ""),
}


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def link_request(fleet: Fleet, route: str, identity: str) -> httpx.Response:
    """A link's "identity" is its token: none, garbage, signed with another server's key,
    the one of another app's .ipa (someone else's link; the two apps share an icon),
    expired, or the right one."""
    urls = fleet.server.services.app_urls
    assert urls is not None
    make = LINKS[route]
    stranger = AppUrls(urls.base_url, LinkSigner(b"s" * 32), urls.ttl, urls.clock)
    expired = AppUrls(urls.base_url, urls.signer, urls.ttl,
                      lambda: datetime.now(UTC) - urls.ttl - timedelta(hours=1))  # fmt: skip
    right = _local(make(urls, fleet.app))
    path = right.split("?")[0]
    chosen: dict[str, Callable[[], str]] = {
        "none": lambda: path,
        "garbage": lambda: f"{path}?t=nonsense",
        "stranger": lambda: _local(make(stranger, fleet.app)),
        "other_device": lambda: (
            f"{path}?{_local(urls.ipa_url(fleet.other_app.sha256)).split('?')[1]}"
        ),
        "expired": lambda: _local(make(expired, fleet.app)),
        "right": lambda: right,
    }
    return await fleet.server.http.get(chosen[identity]())
