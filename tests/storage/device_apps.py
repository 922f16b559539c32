"""A device's row for an app, for the app store's suites: every field has a plain default."""

from __future__ import annotations

from datetime import UTC, datetime

from orchardist.storage.apps import AppState, DeviceApp

UPDATED = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def device_app(
    device_id: str,
    bundle_id: str = "com.example.sales",
    *,
    state: AppState = AppState.QUEUED,
    command_uuid: str | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> DeviceApp:
    return DeviceApp(
        device_id=device_id,
        bundle_id=bundle_id,
        desired_version_id=1,
        installed_version_id=None,
        installed_version=None,
        state=state,
        command_uuid=command_uuid,
        error=error,
        attempts=0,
        next_attempt_at=next_attempt_at,
        updated_at=UPDATED,
    )
