"""Devices put in storage the way check-ins put them there, for the listing and compliance
suites: Authenticate, then (optionally) TokenUpdate and a later check-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchardist.storage import DeviceFacts, EndedBy
from orchardist.storage.sql.repositories import SqlStorage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    udid: str
    name: str | None = None
    serial: str | None = None
    product: str | None = "iPhone15,2"
    model_name: str | None = "iPhone"
    model: str | None = None
    os_version: str | None = "17.2"
    enrolled_at: datetime | None = NOW - timedelta(days=30)  # None: Authenticate only
    seen_at: datetime | None = None  # a check-in after enrolling
    ended_by: EndedBy | None = None
    identity_sha256: str = "a" * 64


async def add_device(storage: SqlStorage, spec: Spec) -> None:
    facts = DeviceFacts(
        spec.udid, "com.apple.mgmt.test", serial_number=spec.serial, model=spec.model,
        model_name=spec.model_name, product_name=spec.product, os_version=spec.os_version,
        device_name=spec.name,
    )  # fmt: skip
    authenticated = (spec.enrolled_at or NOW) - timedelta(minutes=1)
    await storage.authenticate(facts, spec.identity_sha256, authenticated)
    if spec.enrolled_at is not None:
        await storage.token_update(
            spec.udid, token=b"\x01" * 32, push_magic="M", unlock_token=None, now=spec.enrolled_at
        )
    if spec.seen_at is not None:
        await storage.exchange(spec.udid, None, spec.seen_at)
    if spec.ended_by is not None:
        await storage.check_out(spec.udid, NOW, spec.ended_by)
