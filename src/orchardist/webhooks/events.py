"""Webhook event bodies (MicroMDM's format, see the package docstring) and the emitter that
queues them for every configured URL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from orchardist.storage.profiles import DeviceProfile
from orchardist.storage.webhooks import WebhookEvent, WebhookStore

PROFILE_STATUS = "orchardist.ProfileStatus"


def checkin_event(message_type: str, device_id: str, raw: bytes, now: datetime) -> WebhookEvent:
    """mdm.Authenticate, mdm.TokenUpdate, mdm.CheckOut…: what the device sent."""
    return _event(
        f"mdm.{message_type}",
        now,
        checkin_event={"udid": device_id, "url_params": {}, "raw_payload": _b64(raw)},
    )


def acknowledge_event(
    device_id: str, status: str, command_uuid: str, raw: bytes, now: datetime
) -> WebhookEvent:
    """mdm.Connect: a command's result (Acknowledged, Error, CommandFormatError, NotNow)."""
    return _event(
        "mdm.Connect",
        now,
        acknowledge_event={
            "udid": device_id,
            "status": status,
            "command_uuid": command_uuid,
            "url_params": {},
            "raw_payload": _b64(raw),
        },
    )


def profile_event(row: DeviceProfile, now: datetime) -> WebhookEvent:
    """A profile's state on a device moved (pending, installed, failed, missing, removing,
    removed), with the device's error chain when it failed."""
    change = {
        "udid": row.device_id,
        "identifier": row.identifier,
        "state": row.state.value,
        "desired_version": row.desired_version,
        "installed_version": row.installed_version,
        "command_uuid": row.command_uuid,
        "error": row.error,
    }
    return _event(PROFILE_STATUS, now, profile_event=change)


def _event(topic: str, now: datetime, **payload: Any) -> WebhookEvent:
    event_id = str(uuid.uuid4())
    body = {
        "topic": topic,
        "event_id": event_id,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        **payload,
    }
    return WebhookEvent(event_id, topic, json.dumps(body, indent=1).encode())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class WebhookEmitter:
    """Queues events for every URL; does nothing (not even build bodies) without URLs."""

    def __init__(
        self, store: WebhookStore, urls: Sequence[str], clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self.urls = tuple(urls)
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    async def emit(self, make: Callable[[datetime], Sequence[WebhookEvent]]) -> None:
        if not self.urls:
            return
        now = self._clock()
        await self._store.add_webhook_events(self.urls, make(now), now)
