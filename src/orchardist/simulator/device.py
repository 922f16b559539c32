"""One virtual device: SCEP enrollment, signed check-ins, and command sessions."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import plistlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from orchardist.pki import cms
from orchardist.profiles import envelope
from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from orchardist.simulator.answers import Identity, answer
from orchardist.simulator.app_download import DownloadLimits
from orchardist.simulator.apps import DeviceApps
from orchardist.simulator.connections import Connections, Reply
from orchardist.simulator.library import Stock
from orchardist.simulator.made_up import ENROLLED, made_up
from orchardist.simulator.profile import EnrollmentPlan, ProfileError, read_profile
from orchardist.simulator.provisioning import ProvisioningProfiles, user_installed
from orchardist.simulator.refusals import PROFILES, CommandRefusedError, refused

CHECKIN = "application/x-apple-aspen-mdm-checkin"
CONNECT = "application/x-apple-aspen-mdm; charset=UTF-8"


class SimulationError(RuntimeError):
    """The server refused something a real device would have done; str(err) says what."""


@dataclass
class SessionStats:
    commands: int = 0
    not_now: int = 0


class VirtualDevice:
    def __init__(
        self,
        plan: EnrollmentPlan,
        seed: int,
        key: rsa.RSAPrivateKey,
        http: httpx.AsyncClient,
        *,
        app_limits: DownloadLimits | None = None,
        stock: Stock | None = None,
        kind: str = ENROLLED,
        connections: Connections | None = None,
    ) -> None:
        """Device number `seed` of its `kind` (made_up.py); `key` may be shared by many
        devices, each with a certificate of its own (the server cannot tell); its
        check-ins go over `connections` when given (a fleet's), else over `http`."""
        facts = made_up(seed, kind)
        self.rng = random.Random(seed)  # the device's behaviour: wifi address, NotNow
        self.http = http
        self.connections = connections
        self.plan = plan
        self.key = key
        self.udid, self.serial = facts.udid, facts.serial
        self.product, self.model, self.model_name = facts.product, facts.model, facts.model_name
        self.os_version = facts.os_version
        self.identity: Identity | None = None
        # What TokenUpdate tells the server; the local APNs peer routes pushes by it.
        self.token, self.push_magic = facts.token, facts.push_magic
        self.profiles: dict[str, dict[str, Any]] = {}  # installed, by PayloadIdentifier
        self.stock = stock or Stock()  # how large its app and certificate lists are
        self.apps = DeviceApps(app_limits, self.stock.installed_apps())
        self.provisioning = ProvisioningProfiles([user_installed(datetime.now(UTC))])

    # -- enrollment

    async def enroll(self) -> None:
        """SCEP for an identity, then Authenticate and TokenUpdate, as iOS does."""
        self.adopt(await self._scep())
        facts = {
            "Topic": self.plan.topic,
            "SerialNumber": self.serial,
            "ProductName": self.product,
            "OSVersion": self.os_version,
            "BuildVersion": "8L1",
        }
        await self._checkin({"MessageType": "Authenticate", **facts})
        await self._checkin(
            {
                "MessageType": "TokenUpdate",
                "Topic": self.plan.topic,
                "Token": self.token,
                "PushMagic": self.push_magic,
                "UnlockToken": b"UNLOCK" + self.token,
            }
        )

    def adopt(self, cert: x509.Certificate) -> None:
        """Take `cert` (for `self.key`) as the identity: after SCEP, or for a device whose
        enrollment was written straight into the database (`orchardist simulate seed`)."""
        self.identity = Identity(
            udid=self.udid,
            serial_number=self.serial,
            device_name=f"{self.model_name} {self.serial[-4:]}",
            product_name=self.product,
            model=self.model,
            model_name=self.model_name,
            os_version=self.os_version,
            build_version="8L1",
            imei=f"01 234567 {self.serial[:6]} 1",
            wifi_mac="00:1e:c2:" + ":".join(f"{self.rng.randrange(256):02x}" for _ in range(3)),
            certificate=cert,
            more_certificates=self.stock.certificate_items(),
        )

    async def _reenroll(self, payload: bytes) -> None:
        """An enrollment profile replacing ours (same identifier, a new SCEP payload): as
        iOS does, a new key and identity from its SCEP payload, then Authenticate and
        TokenUpdate signed with it; the command's answer goes out with it too."""
        assert self.identity is not None
        try:
            plan = read_profile(payload)
        except ProfileError as exc:
            raise refused(PROFILES, 1009, f"The profile cannot be installed: {exc}") from exc
        self.plan = dataclasses.replace(plan, anchors=self.plan.anchors + plan.anchors)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=plan.key_size)
        cert = await self._scep()
        self.identity = dataclasses.replace(self.identity, certificate=cert)
        await self._checkin({"MessageType": "Authenticate", "Topic": self.plan.topic,
                             "SerialNumber": self.serial, "ProductName": self.product,
                             "OSVersion": self.os_version, "BuildVersion": "8L1"})  # fmt: skip
        await self._checkin({"MessageType": "TokenUpdate", "Topic": self.plan.topic,
                             "Token": self.token, "PushMagic": self.push_magic})  # fmt: skip

    async def _scep(self) -> x509.Certificate:
        http, url = self.http, self.plan.scep_url
        await http.get(url, params={"operation": "GetCACaps"})  # iOS 4 asks; so do we
        ca_reply = await http.get(url, params={"operation": "GetCACert"})
        recipient = _recipient(ca_reply)
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, self.udid)])
        requester = client.Requester(
            client.self_signed_signer(self.key, subject), self.key, recipient
        )
        csr = client.make_csr(self.key, self.udid, self.plan.challenge).public_bytes(Encoding.DER)
        # RFC 8894 §3.2.1.1: unique per request. The usual hash of the public key is not,
        # once a fleet shares one key, so the UDID goes into it too.
        txid = hashlib.sha256(f"{client.transaction_id_for(self.key)}:{self.udid}".encode())
        message = client.pki_message(requester, MessageType.PKCS_REQ, csr, txid.hexdigest())
        for _ in range(4):  # a PENDING answer is polled, like the profile's Retries
            reply = await http.post(
                url,
                params={"operation": "PKIOperation"},
                content=message,
                headers={"Content-Type": "application/x-pki-message"},
            )
            if reply.status_code != 200:
                raise SimulationError(f"SCEP refused: {reply.status_code} {reply.text.strip()}")
            rep = client.read_cert_rep(reply.content, requester, recipient)
            if rep.status == PkiStatus.SUCCESS:
                return rep.certificates[0]
            if rep.status == PkiStatus.FAILURE:
                raise SimulationError(f"SCEP failure {rep.fail_info}: {rep.fail_text}")
        raise SimulationError("SCEP request still pending")

    # -- MDM

    async def session(self, not_now: float = 0.0) -> SessionStats:
        """Idle, then answer every command until the server has nothing more."""
        stats = SessionStats()
        reply = await self._connect({"Status": "Idle"})
        while reply:
            sent = plistlib.loads(reply)
            command, command_uuid = sent["Command"], sent["CommandUUID"]
            if self.rng.random() < not_now:
                stats.not_now += 1
                reply = await self._connect({"Status": "NotNow", "CommandUUID": command_uuid})
                continue
            stats.commands += 1
            reply = await self._connect(await self.respond(command_uuid, command))
        return stats

    async def respond(self, command_uuid: str, command: dict[str, Any]) -> dict[str, Any]:
        """The result for one command: Acknowledged with its keys, or Error with an
        ErrorChain (without UDID, which every request carries)."""
        try:
            keys = await self._answer(command)
        except CommandRefusedError as refusal:
            return {"Status": "Error", "CommandUUID": command_uuid, "ErrorChain": refusal.chain()}
        return {"Status": "Acknowledged", "CommandUUID": command_uuid, **keys}

    async def _answer(self, command: dict[str, Any]) -> dict[str, Any]:
        """Profiles, apps and provisioning profiles are state the device keeps; everything
        else is answered from facts."""
        match command.get("RequestType"):
            case "InstallProfile":
                payload = command.get("Payload", b"")
                if self._install(payload):
                    await self._reenroll(payload)
                return {}
            case "RemoveProfile":
                if self.profiles.pop(str(command.get("Identifier")), None) is None:
                    raise refused(PROFILES, 1003, "The profile is not installed.")
                return {}
            case "ProfileList":
                assert self.identity is not None
                listed = answer(self.identity, command)["ProfileList"]
                return {"ProfileList": [*listed, *self.profiles.values()]}
            case "Settings":
                return {"Settings": [self._apply(item) for item in command.get("Settings", [])]}
            case "InstallApplication":
                return await self._install_app(command)
        kept = self._kept_state(str(command.get("RequestType")))
        if kept is not None:
            return kept(command)
        assert self.identity is not None
        return answer(self.identity, command)

    def _kept_state(self, request_type: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """The answer to a command about the apps or provisioning profiles held."""
        return {
            "RemoveApplication": self.apps.remove,
            "InstalledApplicationList": self.apps.installed_list,
            "ManagedApplicationList": self.apps.managed_list,
            "InstallProvisioningProfile": self.provisioning.install,
            "RemoveProvisioningProfile": self.provisioning.remove,
            "ProvisioningProfileList": self.provisioning.listed,
        }.get(request_type)

    async def _install_app(self, command: dict[str, Any]) -> dict[str, Any]:
        """As iOS does, the app's embedded provisioning profile is installed with it."""
        installed = await self.apps.install(self.http, command)
        if installed.app.embedded_profile is not None:
            self.provisioning.add(installed.app.embedded_profile)
        return {"Identifier": installed.app.identifier, "State": "Managed"}

    def _apply(self, item: object) -> dict[str, Any]:
        """One Settings item, answered per item as iOS does. DeviceName renames the device
        (iOS does it on supervised devices; this one always obeys), so the next
        DeviceInformation reports the new name; other items are acknowledged unchanged."""
        assert self.identity is not None
        if not isinstance(item, dict) or not isinstance(item.get("Item"), str):
            return {"Status": "Error"}
        name = item.get("DeviceName")
        if item["Item"] == "DeviceName" and isinstance(name, str):
            self.identity = dataclasses.replace(self.identity, device_name=name)
        return {"Item": item["Item"], "Status": "Acknowledged"}

    def _install(self, payload: bytes) -> bool:
        """As iOS does: the signature must verify, encrypted payloads must open with this
        device's identity key; the profile replaces one with the same identifier. True
        when it carries an MDM payload (an enrollment profile: see `_reenroll`)."""
        assert self.identity is not None
        try:
            read = envelope.read(payload)
            profile = read.profile
            if "EncryptedPayloadContent" in profile:
                content = envelope.decrypt_payloads(profile, self.identity.certificate, self.key)
                profile = {**profile, "PayloadContent": content}
        except (envelope.ProfileReadError, cms.CmsError, ValueError) as exc:
            raise refused(PROFILES, 1009, f"The profile cannot be installed: {exc}") from exc
        self.profiles[str(profile.get("PayloadIdentifier"))] = {
            key: profile[key]
            for key in ("PayloadIdentifier", "PayloadUUID", "PayloadVersion", "PayloadDisplayName")
            if key in profile
        } | {
            "IsEncrypted": "EncryptedPayloadContent" in read.profile,
            "IsManaged": True,
            "PayloadContent": [
                {k: p.get(k) for k in ("PayloadType", "PayloadIdentifier", "PayloadVersion")}
                for p in profile.get("PayloadContent", [])
                if isinstance(p, dict)
            ],
        }
        return any(
            isinstance(p, dict) and p.get("PayloadType") == "com.apple.mdm"
            for p in profile.get("PayloadContent", [])
        )

    async def _checkin(self, fields: dict[str, Any]) -> bytes:
        return await self._put(self.plan.checkin_url, fields, CHECKIN)

    async def _connect(self, fields: dict[str, Any]) -> bytes:
        return await self._put(self.plan.server_url, fields, CONNECT)

    def signed(
        self, fields: dict[str, Any], content_type: str = CONNECT
    ) -> tuple[bytes, dict[str, str]]:
        """A request's body and headers as this device sends them (benchmarks replay them)."""
        body = plistlib.dumps({"UDID": self.udid, **fields})
        signer = self.identity.certificate if self.identity else None
        if signer is None:
            raise SimulationError("no identity yet: enroll first")
        # iOS signs with SHA-1 (Apple, "Mdm-Signature"); the server must accept it.
        signature = cms.sign(body, signer, self.key, digest="sha1", detached=True)
        headers = {
            "Content-Type": content_type,
            "Mdm-Signature": base64.b64encode(signature).decode(),
        }
        return body, headers

    async def _put(self, url: str, fields: dict[str, Any], content_type: str) -> bytes:
        body, headers = self.signed(fields, content_type)
        if self.connections is not None:
            response: Reply | httpx.Response = await self.connections.put(url, body, headers)
        else:
            response = await self.http.put(url, content=body, headers=headers)
        if response.status_code != 200:
            raise SimulationError(f"{url} answered {response.status_code}: {response.text.strip()}")
        return response.content


def _recipient(reply: httpx.Response) -> x509.Certificate:
    """The certificate to encrypt to: the RA when GetCACert names one, else the CA."""
    if reply.headers.get("content-type", "").startswith("application/x-x509-ca-ra-cert"):
        certificates = pkcs7.load_der_pkcs7_certificates(reply.content)
        for cert in certificates:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if not constraints.ca:
                return cert
        return certificates[0]
    return x509.load_der_x509_certificate(reply.content)
