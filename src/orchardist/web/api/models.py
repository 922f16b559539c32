"""The JSON shapes of /api/v1."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchardist.mdm.summary import DeviceSummary


class AllDevices(BaseModel):
    all: Literal[True]


class GroupDevices(BaseModel):
    """The enrolled members of a static group (PUT /api/v1/groups/{name})."""

    group: str = Field(min_length=1, max_length=255)


class CommandRequest(BaseModel):
    request_type: str = Field(examples=["DeviceLock"])
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"Message": "Call IT"}])
    targets: list[str] | AllDevices | GroupDevices = Field(
        examples=[["UDID-1"], {"all": True}, {"group": "sales"}],
        description="UDIDs (any number), every enrolled device, or a group's enrolled members",
    )
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs first")
    expires_in_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 24 * 3600)
    confirm: bool = Field(default=False, description="Required for EraseDevice")


class CommandQueued(BaseModel):
    command_uuid: str
    targets: int


class Compliance(BaseModel):
    """The device's stored verdict under the `[compliance]` rules (docs/compliance.md)."""

    status: Literal["compliant", "non_compliant", "unknown"]
    reasons: list[str] = Field(
        description="Why it is non_compliant (each broken rule), or what could not be "
        "checked when unknown; plain sentences, empty when compliant"
    )
    evaluated_at: datetime | None = Field(description="null: not evaluated yet")


class Device(BaseModel):
    udid: str
    serial_number: str | None
    model: str | None
    model_name: str | None
    product_name: str | None
    os_version: str | None
    build_version: str | None
    device_name: str | None
    enrolled: bool
    state: str = Field(
        description="enrolled; authenticated (waiting for its first TokenUpdate); or how the "
        "enrollment ended: checked_out (the device said so), retired (an administrator), "
        "erased (EraseDevice acknowledged)"
    )
    enrolled_at: datetime | None
    last_seen_at: datetime | None
    compliance: Compliance


class Inventory(BaseModel):
    """What the device answered to queries; lists are its latest complete answer."""

    updated_at: datetime
    facts: dict[str, Any] = Field(
        description="DeviceInformation: every key the device ever reported, latest value"
    )
    facts_seen_at: dict[str, datetime] = Field(
        default_factory=dict, description="when each key of facts was last reported"
    )
    security: dict[str, Any]
    restrictions: dict[str, Any]
    apps: list[dict[str, Any]]
    certificates: list[dict[str, Any]]  # with not_after: certificates expiring show here
    profiles: list[dict[str, Any]]
    provisioning_profiles: list[dict[str, Any]]  # with expires_at


class RetireRequest(BaseModel):
    confirm: bool = Field(default=False, description="Required: the device leaves management")
    forget: bool = Field(
        default=False,
        description="The device is gone: end the enrollment now and revoke its identity "
        "certificate (it cannot check in again until it re-enrolls), instead of queueing "
        "RemoveProfile for its enrollment profile",
    )


class Retirement(Device):
    command_uuid: str | None = Field(
        description="The RemoveProfile queued; null when the device was forgotten"
    )


class DeviceDetail(Device):
    topic: str
    imei: str | None
    meid: str | None
    checked_out_at: datetime | None
    pushed_at: datetime | None = Field(description="The last push APNs accepted")
    push_token_invalid_at: datetime | None = Field(
        description="APNs refused the token (410/BadDeviceToken); no pushes until the device "
        "sends a new one"
    )
    enrolled_by: dict[str, Any] | None = Field(
        default=None, description="user and directory groups, for over-the-air enrollments"
    )
    inventory: Inventory | None
    summary: DeviceSummary | None = Field(
        default=None,
        description="What the inventory says, as `orchardist device show` shows it: battery, "
        "storage, passcode, encryption, app count, certificates expiring within 30 days",
    )


class CommandState(BaseModel):
    command_uuid: str
    udid: str
    request_type: str
    status: str
    created_at: datetime
    answered_at: datetime | None
    result: dict[str, Any] | None


class CommandDetail(BaseModel):
    command_uuid: str
    request_type: str
    counts: dict[str, int] = Field(
        description="Targets by state: queued (not pushed yet), pushed, sent (fetched, not "
        "answered), acknowledged, error, not_now, expired, cancelled"
    )
    targets: list[CommandState]


class PushRequested(BaseModel):
    udid: str
    push_certificate: bool = Field(description="False: nothing can be pushed until one is imported")


class PushCertificateInfo(BaseModel):
    topic: str
    not_after: datetime
    days_left: int
    warning: str | None = Field(description="Set from 30 days before expiry")


class InvitationRequest(BaseModel):
    user: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=255)
    sms: str | None = Field(default=None, max_length=64, description="phone number, +E.164")


class InvitationSent(BaseModel):
    invitation_id: str
    link: str
    expires_at: datetime
    deliveries: list[dict[str, Any]] = Field(description="channel, address, ok, detail")
