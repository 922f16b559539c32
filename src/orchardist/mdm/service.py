"""The MDM service: a verified device identity and a parsed message in, an HTTP answer out.

Identity policy (Apple, "Mdm-Signature"; NanoMDM's certificate binding): the certificate
that signs Authenticate must be one our CA issued and has not revoked, and may bind the
device only as `mdm/binding.py` allows; every later request must come with that same
certificate. Refusals are 403, never 401, which a device takes as "unenroll".
"""

from __future__ import annotations

import plistlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchardist import bulk_threads
from orchardist.mdm.binding import authenticate_refusal, renews, renews_silently
from orchardist.mdm.checkin import Checkin, MessageType
from orchardist.mdm.identity import DeviceIdentity
from orchardist.mdm.inventory import stored_inventory
from orchardist.mdm.report_digest import PackedResult
from orchardist.mdm.reports import OFF_LOOP_BYTES, Report, Status
from orchardist.storage import (
    LAST_SEEN_RESOLUTION,
    CertificateStatus,
    CertificateStore,
    DeviceFacts,
    EndedBy,
    IdleState,
    IssuedCertificate,
    MdmStorage,
    ReportOutcome,
    TargetStatus,
)
from orchardist.storage.inventory import InventoryStore
from orchardist.webhooks.events import WebhookEmitter, acknowledge_event, checkin_event

PLIST = "application/xml"  # what Apple's examples answer commands with

_TARGET_STATUS = {
    Status.ACKNOWLEDGED: TargetStatus.ACKNOWLEDGED,
    Status.ERROR: TargetStatus.ERROR,
    Status.COMMAND_FORMAT_ERROR: TargetStatus.COMMAND_FORMAT_ERROR,
    Status.NOT_NOW: TargetStatus.NOT_NOW,
}


@dataclass(frozen=True)
class MdmAnswer:
    status: int
    body: bytes = b""
    content_type: str = PLIST
    reason: str | None = None  # why a request was refused, for the log and the body
    command_uuid: str | None = None  # the command sent with this answer
    # on a refusal over identity: the device the certificate is issued for or bound to
    certificate_device: str | None = None


# (device_id, command_uuid, request_type, acknowledged, result plus its ErrorChain)
ResultHook = Callable[[str, str, str, bool, Mapping[str, Any]], Awaitable[None]]


class MdmService:
    def __init__(
        self,
        store: MdmStorage,
        certificates: CertificateStore,
        inventory: InventoryStore,
        *,
        clock: Callable[[], datetime],
        on_result: ResultHook | None = None,
        on_enrolled: Callable[[str], Awaitable[None]] | None = None,
        events: WebhookEmitter | None = None,
    ) -> None:
        self._store = store
        self._certificates = certificates
        self._inventory = inventory
        self._clock = clock
        self.on_result = on_result  # told of every stored result (the profile library)
        self.on_enrolled = on_enrolled  # told of every TokenUpdate (the profile library)
        self.events = events  # webhooks: device events and command results

    async def checkin(self, message: Checkin, identity: DeviceIdentity) -> MdmAnswer:
        now = self._clock()
        if message.message_type == MessageType.AUTHENTICATE:
            verdict = await self._refuse_authenticate(message.device_id, identity)
            if isinstance(verdict, MdmAnswer):
                return verdict
            # A renewal goes on with the enrollment; anything else starts a new one.
            if not verdict or not await self._store.rebind(
                message.device_id, identity.sha256, _facts(message), now
            ):
                await self._store.authenticate(_facts(message), identity.sha256, now)
            await self._emit_checkin(message)
            return MdmAnswer(200)
        if not _bound(await self._store.idle_state(message.device_id, now), identity):
            refusal = await self._refuse_unbound(message.device_id, identity)
            if refusal is not None:
                return refusal
        answer = await self._after_authenticate(message, now)
        if answer.status == 200 and message.message_type in _EMITTED:
            await self._emit_checkin(message)
        return answer

    async def connect(self, report: Report, identity: DeviceIdentity) -> MdmAnswer:
        now = self._clock()
        # One query: the binding, the certificate's status, and whether anything waits.
        state = await self._store.idle_state(report.device_id, now)
        if not _bound(state, identity):
            refusal = await self._refuse_unbound(report.device_id, identity)
            if refusal is not None:
                return refusal
        write_seen = _seen_is_stale(state, now)
        if report.status == Status.IDLE and state is not None and not state.pending:
            # The hot path of a fleet with nothing to do: that query was the whole work.
            if write_seen:
                await self._store.touch(report.device_id, now)
            return MdmAnswer(200)  # a zero-length body ends the session
        stored = None
        if report.status != Status.IDLE:
            assert report.command_uuid is not None  # parse_report guarantees it
            stored = (report.command_uuid, _TARGET_STATUS[report.status], report.raw)
        exchange = await self._store.exchange(report.device_id, stored, now, seen=write_seen)
        if exchange.outcome == ReportOutcome.UNKNOWN:
            return MdmAnswer(400, reason=f"no command {report.command_uuid} for this device")
        # What follows a result runs again for a retransmission (a DUPLICATE): a server killed
        # between storing a result and acting on it acts when the device sends it again.
        # Webhook events go out for the first answer only.
        request_type = exchange.stored_request_type or exchange.duplicate_request_type
        if report.status == Status.ACKNOWLEDGED and request_type:
            await self._take_inventory(report, request_type, now)
            if request_type == "EraseDevice":
                # Apple: the device acknowledges, then erases itself; it comes back (if ever)
                # as a new enrollment with a new certificate.
                await self._store.check_out(report.device_id, now, EndedBy.ERASED)
        if exchange.stored_request_type and self.events is not None:
            assert report.command_uuid is not None
            uuid, status = report.command_uuid, str(report.status)
            await self.events.emit(
                lambda at: [acknowledge_event(report.device_id, status, uuid, report.raw, at)]
            )
        if self.on_result is not None and request_type:
            assert report.command_uuid is not None
            await self.on_result(
                report.device_id,
                report.command_uuid,
                request_type,
                report.status == Status.ACKNOWLEDGED,
                _hook_result(report),
            )
        if exchange.next_command is None:
            return MdmAnswer(200)  # a zero-length body ends the session
        command_uuid, body = exchange.next_command
        return MdmAnswer(200, body, command_uuid=command_uuid)

    async def _take_inventory(self, report: Report, request_type: str, now: datetime) -> None:
        known = report.inventories or {}
        if request_type in known:  # computed by the worker process that read the report
            update = known[request_type]
        elif len(report.raw) >= OFF_LOOP_BYTES:  # thousands of apps: not on the event loop
            update = await bulk_threads.run(stored_inventory, request_type, report.result)
        else:
            update = stored_inventory(request_type, report.result)
        if update is None:
            return
        await self._inventory.apply_inventory(report.device_id, update, now)
        if update.facts:
            # The listing shows what the device says now (an OS update, a new name).
            fresh = {
                field: update.facts[key]
                for key, field in _FACT_FIELDS.items()
                if isinstance(update.facts.get(key), str)
            }
            await self._store.refresh_facts(report.device_id, fresh)

    async def _after_authenticate(self, message: Checkin, now: datetime) -> MdmAnswer:
        device_id = message.device_id
        match message.message_type:
            case MessageType.TOKEN_UPDATE:
                assert message.token is not None
                assert message.push_magic is not None
                await self._store.token_update(
                    device_id,
                    token=message.token,
                    push_magic=message.push_magic,
                    unlock_token=message.unlock_token,
                    now=now,
                )
                if self.on_enrolled is not None:
                    await self.on_enrolled(device_id)
                return MdmAnswer(200)
            case MessageType.CHECK_OUT:
                await self._store.check_out(device_id, now)
                return MdmAnswer(200)
            case MessageType.SET_BOOTSTRAP_TOKEN:
                token = message.get("BootstrapToken")
                await self._store.set_bootstrap_token(device_id, token or None)
                return MdmAnswer(200)
            case MessageType.GET_BOOTSTRAP_TOKEN:
                enrollment = await self._store.get_enrollment(device_id)
                token = enrollment.bootstrap_token if enrollment else None
                body = {} if token is None else {"BootstrapToken": token}
                return MdmAnswer(200, plistlib.dumps(body))
            case MessageType.USER_AUTHENTICATE:
                # 410 declines the user channel for this user (Apple, "UserAuthenticate").
                return MdmAnswer(410, reason="user channels are not enabled on this server")
            case MessageType.GET_TOKEN:
                # Apple, "Get Token" (developer.apple.com/documentation/devicemanagement/
                # get-token): "A server that supports this request needs to include a
                # com.apple.mdm.token value in the ServerCapabilities key of the MDM profile
                # payload" (ours never does), and "If the server doesn't recognize the service
                # type, it needs to return a 400 HTTP response status": we recognize none.
                service = message.get("TokenServiceType")
                return MdmAnswer(
                    400, reason=f"no token service on this server (TokenServiceType {service!r})"
                )
            case _:  # DeclarativeManagement
                # Apple, "Integrating declarative management": it "has to be explicitly
                # enabled with a new MDM command", which this server never sends; "Without
                # that enablement, the MDM protocol functions exactly as before". A device
                # asking anyway finds nothing: Apple, "Declarative Management" (check-in):
                # "If the declaration isn't present on the server, it needs to return a 404
                # Not Found HTTP status response to the device. That causes the device to
                # remove any corresponding declaration that is present on it." The same 404
                # answers tokens, declaration-items and status: Apple defines only their 200
                # answers, from a server that holds declarations.
                endpoint = message.get("Endpoint")
                return MdmAnswer(
                    404,
                    reason=f"no declarative management on this server (Endpoint {endpoint!r})",
                )

    async def _emit_checkin(self, message: Checkin) -> None:
        if self.events is not None:
            kind, device, raw = message.message_type.value, message.device_id, message.raw
            await self.events.emit(lambda at: [checkin_event(kind, device, raw, at)])

    async def _issued(self, identity: DeviceIdentity) -> IssuedCertificate | MdmAnswer:
        """Our record of the certificate, or the refusal when it is not ours or revoked."""
        record = await self._certificates.get_certificate(identity.certificate.serial_number)
        return _issued_answer(record, identity)

    async def _refuse_authenticate(
        self, device_id: str, identity: DeviceIdentity
    ) -> MdmAnswer | bool:
        """Why this certificate may not authenticate as the device, or whether it renews the
        live enrollment's (True) or starts a new one (False): ours, not revoked, and allowed
        to bind it (mdm/binding.py), from one query."""
        serial = identity.certificate.serial_number
        state = await self._store.binding_state(serial, device_id)
        record = _issued_answer(state.presented, identity)
        if isinstance(record, MdmAnswer):
            return record
        refusal = authenticate_refusal(device_id, record, state)
        if refusal is None:
            return renews(record, state)
        return MdmAnswer(403, reason=refusal.reason, certificate_device=refusal.certificate_device)

    async def _refuse_unbound(self, device_id: str, identity: DeviceIdentity) -> MdmAnswer | None:
        enrollment = await self._store.get_enrollment(device_id)
        if enrollment is None:
            return MdmAnswer(403, reason="unknown device: it must Authenticate first")
        sha256 = identity.sha256
        if enrollment.identity_sha256 != sha256 and await self._renewed(device_id, identity):
            return None
        if enrollment.identity_sha256 != sha256:
            owner = await self._store.device_bound_to(sha256, device_id)
            return MdmAnswer(
                403,
                reason="this certificate is not the one bound to the device"
                + (f": it belongs to device {owner}" if owner else ""),
                certificate_device=owner,
            )
        record = await self._issued(identity)
        return record if isinstance(record, MdmAnswer) else None

    async def _renewed(self, device_id: str, identity: DeviceIdentity) -> bool:
        """A RenewalReq's certificate, first seen on a request other than Authenticate:
        the enrollment moves to it (mdm/binding.py `renews_silently`)."""
        state = await self._store.binding_state(identity.certificate.serial_number, device_id)
        record = _issued_answer(state.presented, identity)
        if isinstance(record, MdmAnswer) or not renews_silently(record, state):
            return False
        return await self._store.rebind(device_id, identity.sha256, None, self._clock())


def _issued_answer(
    record: IssuedCertificate | None, identity: DeviceIdentity
) -> IssuedCertificate | MdmAnswer:
    if record is None or record.sha256 != identity.sha256:
        return MdmAnswer(403, reason="the identity certificate was not issued by this server")
    if record.status != CertificateStatus.VALID:
        return MdmAnswer(403, reason="the identity certificate is revoked")
    return record


def _bound(state: IdleState | None, identity: DeviceIdentity) -> bool:
    """The quick yes: the device is bound to this certificate and it is not revoked. A no
    goes to `_refuse_unbound`, which works out the reason (and says yes in no other case)."""
    return (
        state is not None and state.identity_sha256 == identity.sha256 and state.certificate_valid
    )


# Check-ins besides Authenticate that webhooks hear of (MicroMDM sends the same).
_EMITTED = {MessageType.TOKEN_UPDATE, MessageType.CHECK_OUT}

# DeviceInformation query → DeviceFacts field
_FACT_FIELDS = {
    "SerialNumber": "serial_number",
    "Model": "model",
    "ModelName": "model_name",
    "ProductName": "product_name",
    "OSVersion": "os_version",
    "BuildVersion": "build_version",
    "DeviceName": "device_name",
    "IMEI": "imei",
    "MEID": "meid",
}


def _hook_result(report: Report) -> Mapping[str, Any]:
    """The result plus its ErrorChain, as the hooks get it; a worker-read report's large
    values stay packed until a hook reads them (most read none)."""
    chain = list(report.error_chain)
    if isinstance(report.result, PackedResult):
        return report.result.plus("ErrorChain", chain)
    return {**report.result, "ErrorChain": chain}


def _facts(message: Checkin) -> DeviceFacts:
    def text(key: str) -> str | None:
        value = message.get(key)
        return value if isinstance(value, str) else None

    return DeviceFacts(
        device_id=message.device_id,
        topic=message.get("Topic"),
        serial_number=text("SerialNumber"),
        model=text("Model"),
        model_name=text("ModelName"),
        product_name=text("ProductName"),
        os_version=text("OSVersion"),
        build_version=text("BuildVersion"),
        device_name=text("DeviceName"),
        imei=text("IMEI"),
        meid=text("MEID"),
    )


def _seen_is_stale(state: IdleState | None, now: datetime) -> bool:
    """Whether this request is to write last_seen_at: once a LAST_SEEN_RESOLUTION, for an
    Idle and a command's answer alike. last_seen_at is indexed, so each write of it updates
    every index of the enrollment's row (PostgreSQL cannot make it a HOT update)."""
    if state is None or state.last_seen_at is None:
        return True
    return now - state.last_seen_at >= LAST_SEEN_RESOLUTION
