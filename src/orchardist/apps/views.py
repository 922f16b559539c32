"""The app library as people read it: one presenter for the API, the CLI and the console,
so the three never disagree. Links are signed afresh on each call (`AppUrls`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchardist.apps.library import Uploaded, version_warnings
from orchardist.apps.urls import AppUrls, app_icon
from orchardist.storage.apps import AppStore, AppVersion, StoredApp
from orchardist.storage.profiles import TargetKind


@dataclass(frozen=True)
class AppSummary:
    bundle_id: str
    display_name: str
    version: str  # the latest version's CFBundleShortVersionString
    build: str  # its CFBundleVersion
    version_id: int  # its number in the library (1, 2, … per app)
    versions: int  # how many versions are stored
    size: int  # bytes of the latest .ipa
    minimum_os: str | None
    device_family: list[int]
    manifest_url: str  # signed, expiring: what InstallApplication and Safari read
    icon_url: str | None  # signed, expiring; None without an icon
    install_link: str  # itms-services://… for Safari on the device
    warnings: list[str]
    updated_at: datetime


@dataclass(frozen=True)
class VersionSummary:
    version_id: int
    version: str
    build: str
    size: int
    sha256: str
    minimum_os: str | None
    provisioning_expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AppDetail(AppSummary):
    description: str
    catalog_groups: list[str]
    history: list[VersionSummary]  # oldest first
    assignments: dict[str, list[str]]  # device / group / all
    states: dict[str, int]  # devices per state


@dataclass(frozen=True)
class UploadSummary:
    bundle_id: str
    version: str
    build: str
    version_id: int
    display_name: str
    size: int
    sha256: str
    replaced: bool  # this version was there: its file was replaced
    updating: int  # devices that get it through the paced roll-out
    warnings: list[str]


def upload_summary(done: Uploaded) -> UploadSummary:
    version = done.version
    return UploadSummary(
        bundle_id=version.bundle_id,
        version=version.short_version,
        build=version.build,
        version_id=version.version_id,
        display_name=version.display_name,
        size=version.size,
        sha256=version.sha256,
        replaced=done.replaced,
        updating=done.updating,
        warnings=list(done.warnings),
    )


async def app_summaries(store: AppStore, urls: AppUrls, now: datetime) -> list[AppSummary]:
    """Every app, by bundle id, with its latest version."""
    found = []
    for app in await store.list_apps():
        versions = await store.app_versions(app.bundle_id)
        latest = next((v for v in versions if v.version_id == app.latest_version_id), None)
        if latest is not None:  # removed between the two reads
            found.append(_summary(app, latest, len(versions), urls, now))
    return found


async def app_detail(
    store: AppStore, urls: AppUrls, bundle_id: str, now: datetime
) -> AppDetail | None:
    """An app's versions, assignments and device counts; None when there is no such app."""
    app = await store.get_app(bundle_id)
    versions = await store.app_versions(bundle_id)
    latest = next((v for v in versions if app and v.version_id == app.latest_version_id), None)
    if app is None or latest is None:
        return None
    assignments: dict[str, list[str]] = {kind.value: [] for kind in TargetKind}
    for assignment in await store.app_assignments(bundle_id):
        assignments[assignment.kind.value].append(assignment.target)
    counts = await store.app_state_counts(bundle_id)
    summary = _summary(app, latest, len(versions), urls, now)
    return AppDetail(
        **vars(summary),
        description=app.description,
        catalog_groups=list(app.catalog_groups),
        history=[_version(v) for v in versions],
        assignments=assignments,
        states={state.value: count for state, count in sorted(counts.items())},
    )


def _summary(
    app: StoredApp, latest: AppVersion, versions: int, urls: AppUrls, now: datetime
) -> AppSummary:
    icon = app_icon(app, latest)
    return AppSummary(
        bundle_id=app.bundle_id,
        display_name=app.display_name,
        version=latest.short_version,
        build=latest.build,
        version_id=latest.version_id,
        versions=versions,
        size=latest.size,
        minimum_os=latest.minimum_os,
        device_family=list(latest.device_family),
        manifest_url=urls.manifest_url(app.bundle_id, latest.version_id),
        icon_url=urls.icon_url(icon) if icon is not None else None,
        install_link=urls.install_link(app.bundle_id, latest.version_id),
        warnings=version_warnings(app, latest, now),
        updated_at=app.updated_at,
    )


def _version(version: AppVersion) -> VersionSummary:
    return VersionSummary(
        version_id=version.version_id,
        version=version.short_version,
        build=version.build,
        size=version.size,
        sha256=version.sha256,
        minimum_os=version.minimum_os,
        provisioning_expires_at=version.provisioning_expires_at,
        created_at=version.created_at,
    )
