"""The in-house app library's records and store: apps (one per bundle id), their uploaded
versions, assignments, each device's state for each app, and the app catalog's entitlements.

Files (the .ipa, icons) live in the content-addressed file store (`orchardist.apps`); these
records name them by SHA-256. Assignments reuse the profile library's shape
(`Assignment`, with the bundle id as its `identifier`, and `TargetKind`), so that one
reconciliation idea serves both.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from orchardist.storage.profiles import Assignment, TargetKind

if TYPE_CHECKING:  # orchardist.storage imports this module
    from orchardist.storage import NewCommand

# The catalog group that entitles every signed-in directory user (see `StoredApp`).
EVERYONE = "*"

# Bounds the store enforces (longer text is cut; a bigger `info` is refused with ValueError).
DESCRIPTION_MAX_CHARS = 4000
ERROR_MAX_CHARS = 2000
INFO_MAX_BYTES = 16 * 1024  # `AppVersion.info` as compact JSON


class AppState(enum.StrEnum):
    """One device's state for one app. The device speaks through the InstallApplication
    answer and ManagedApplicationList's `Status` (Apple's device-management
    mdm/commands/application.managed.list.yaml); the comments map its values."""

    UPDATE_PENDING = "update_pending"  # a version waits to be sent (paced rollout, retries)
    QUEUED = "queued"  # InstallApplication queued, or Status Queued / NeedsRedemption
    # Status Redeeming, ValidatingPurchase, ValidatingUpdate, Updating, Installing
    INSTALLING = "installing"
    # Status Prompting, PromptingForLogin, PromptingForUpdate(Login), PromptingForManagement
    PROMPTING = "prompting"
    MANAGED = "managed"  # Status Managed
    USER_DECLINED = "user_declined"  # UserRejected, UpdateRejected, ManagementRejected
    USER_INSTALLED = "user_installed"  # UserInstalledApp: present but not managed
    FAILED = "failed"  # the command's Error status or Status Failed; `error` says why
    MISSING = "missing"  # ManagedButUninstalled, or absent from the lists once managed
    REMOVING = "removing"  # RemoveApplication queued
    REMOVED = "removed"


@dataclass(frozen=True)
class AppVersion:
    """One uploaded .ipa; `version_id` counts 1, 2, … per app in upload order."""

    bundle_id: str
    version_id: int
    short_version: str  # CFBundleShortVersionString
    build: str  # CFBundleVersion; (bundle_id, short_version, build) is unique
    display_name: str
    minimum_os: str | None
    device_family: tuple[int, ...]  # UIDeviceFamily: 1 iPhone, 2 iPad
    sha256: str  # of the .ipa: its key in the file store
    size: int  # bytes
    icon_sha256: str | None  # the icon read from the .ipa (browser-ready PNG), if any
    provisioning_uuid: str | None  # of its embedded.mobileprovision
    provisioning_expires_at: datetime | None
    info: Mapping[str, Any]  # other Info.plist keys worth showing, JSON-ready, bounded
    created_at: datetime


@dataclass(frozen=True)
class NewAppVersion:
    """What an upload read from an .ipa: an `AppVersion` before the store numbers it."""

    bundle_id: str
    short_version: str
    build: str
    display_name: str
    minimum_os: str | None
    device_family: tuple[int, ...]
    sha256: str
    size: int
    icon_sha256: str | None = None
    provisioning_uuid: str | None = None
    provisioning_expires_at: datetime | None = None
    info: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StoredApp:
    """An app of the library. `catalog_groups` are the directory groups whose members see
    it in the app catalog: none means nobody, `EVERYONE` ("*") every signed-in user."""

    bundle_id: str
    display_name: str  # the latest version's
    latest_version_id: int
    created_at: datetime
    updated_at: datetime
    icon_sha256: str | None  # an admin's replacement icon; None: the version's own
    description: str  # the admin's text for the catalog; "" when none
    catalog_groups: tuple[str, ...]  # sorted


@dataclass(frozen=True)
class AppChanges:
    """An admin's edit of an app; None leaves a field as it is."""

    description: str | None = None
    catalog_groups: Sequence[str] | None = None
    icon_sha256: str | None = None
    clear_icon: bool = False  # back to the version's own icon


@dataclass(frozen=True)
class CatalogEntry:
    app: StoredApp
    latest: AppVersion


@dataclass(frozen=True)
class DeviceApp:
    device_id: str
    bundle_id: str
    desired_version_id: int | None  # None: to be removed
    installed_version_id: int | None  # the version of ours it is known to hold
    installed_version: str | None  # as the device reports it: "ShortVersion (Version)"
    state: AppState
    command_uuid: str | None  # the InstallApplication / RemoveApplication in flight
    error: str | None
    attempts: int  # commands sent for the desired version so far (for retries)
    next_attempt_at: datetime | None  # when the picker may hand it out; None: not waiting
    updated_at: datetime


class AppVersionExistsError(Exception):
    """The same (bundle_id, short_version, build) was uploaded before."""

    def __init__(self, existing: AppVersion) -> None:
        super().__init__(
            f"{existing.bundle_id} {existing.short_version} ({existing.build}) is uploaded "
            "already; replace it to upload it again"
        )
        self.existing = existing


class AppStore(Protocol):
    async def add_app_version(
        self, version: NewAppVersion, now: datetime, *, replace: bool = False
    ) -> AppVersion:
        """Store a version, creating the app for a new bundle id (version 1, nobody in its
        catalog groups). A new version becomes the latest and names the app. The same
        short version and build again raises AppVersionExistsError, unless `replace`: then
        the existing row takes the new file and details and keeps its version_id (the
        latest stays the latest). Raises ValueError when `info` exceeds INFO_MAX_BYTES."""

    async def get_app(self, bundle_id: str) -> StoredApp | None: ...

    async def list_apps(self) -> list[StoredApp]:
        """Every app, by bundle id."""

    async def app_version(self, bundle_id: str, version_id: int | None = None) -> AppVersion | None:
        """A version (the latest with None)."""

    async def app_versions(self, bundle_id: str) -> list[AppVersion]:
        """Every version, oldest first."""

    async def find_app_version(
        self, bundle_id: str, short_version: str, build: str
    ) -> AppVersion | None: ...

    async def update_app(
        self, bundle_id: str, changes: AppChanges, now: datetime
    ) -> StoredApp | None:
        """Apply an admin's edit (the description is cut to DESCRIPTION_MAX_CHARS); None
        when there is no such app."""

    async def delete_app(self, bundle_id: str) -> bool:
        """Forget the app, its versions, assignments, catalog groups and device rows (send
        RemoveApplication first). False when there was no such app."""

    async def file_referenced(self, sha256: str) -> bool:
        """Whether any version's .ipa or icon, or an app's icon, is this file (before the
        file store deletes it)."""

    async def set_app_assignments(
        self, bundle_id: str, kind: TargetKind, targets: Sequence[str], *, assigned: bool
    ) -> None:
        """Add (or, with assigned=False, remove) assignments; adding one twice keeps one."""

    async def app_assignments(self, bundle_id: str | None = None) -> list[Assignment]:
        """By bundle id, kind, target; `identifier` is the bundle id."""

    async def entitled_apps(self, directory_groups: Sequence[str]) -> list[CatalogEntry]:
        """The catalog of a user in these groups: apps whose catalog groups name one of
        them or EVERYONE, with their latest version, by display name."""

    async def save_device_apps(self, rows: Sequence[DeviceApp]) -> None:
        """Upsert by (device_id, bundle_id); errors cut to ERROR_MAX_CHARS."""

    async def queue_app_command(
        self,
        command: NewCommand,
        rows: Sequence[DeviceApp],
        now: datetime,
        *,
        seen: Mapping[str, str | None] | None = None,
    ) -> list[DeviceApp]:
        """In one transaction: the rows saved and `command` queued for their devices, so a
        server killed mid-way through a roll-out or a reconciliation leaves no command
        without its rows (the next pass would send it again) and no row naming a command
        that was never queued. With `seen` (device id -> the command_uuid its row named
        when read) a compare-and-set: a row that names another command by now is left as
        it is (another pass queued one meanwhile), and the command goes only to the
        devices whose rows were saved; none saved, nothing is queued. The rows saved."""

    async def apps_concern(self, device_id: str) -> bool:
        """Whether any app is assigned, or the device has app rows: when neither, there is
        nothing to reconcile for it (one query; every enrollment asks)."""

    async def device_apps(
        self,
        *,
        device_id: str | None = None,
        bundle_id: str | None = None,
        state: AppState | None = None,
    ) -> list[DeviceApp]:
        """The rows matching every filter given, by bundle id then device id."""

    async def device_app_by_command(self, device_id: str, command_uuid: str) -> DeviceApp | None:
        """The row whose command in flight is this one."""

    async def due_device_apps(
        self, now: datetime, limit: int, *, state: AppState | None = None
    ) -> list[DeviceApp]:
        """The paced rollout's and the retries' picker: at most `limit` rows (in `state`,
        if given) whose next_attempt_at is at or before `now`, earliest first (ties by
        device id, bundle id). Rows without next_attempt_at are never due."""

    async def app_state_counts(self, bundle_id: str) -> dict[AppState, int]:
        """How many devices are in each state for this app (states with none left out)."""
