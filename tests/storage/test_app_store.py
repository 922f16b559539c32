"""The in-house app library's storage contract, on every SQL backend: versions numbered per
app and unique per (short version, build), admin edits, the catalog's entitlements,
assignments, and deletes that take every row of the app with them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchardist.storage.apps import (
    DESCRIPTION_MAX_CHARS,
    EVERYONE,
    INFO_MAX_BYTES,
    AppChanges,
    AppState,
    AppVersionExistsError,
    NewAppVersion,
)
from orchardist.storage.profiles import Assignment, TargetKind
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.device_apps import device_app

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 6, 1, tzinfo=UTC)


def upload(
    short_version: str = "1.0",
    build: str = "1",
    bundle_id: str = "com.example.sales",
    **more: Any,
) -> NewAppVersion:
    """A version as an upload reads it; `more` overrides fields."""
    digest = f"{bundle_id}-{short_version}-{build}".encode().hex()[:64].ljust(64, "0")
    return replace(
        NewAppVersion(
            bundle_id=bundle_id,
            short_version=short_version,
            build=build,
            display_name="Sales",
            minimum_os="16.0",
            device_family=(1, 2),
            sha256=digest,
            size=1234,
            icon_sha256="c" * 64,
            provisioning_uuid="PROV-1",
            provisioning_expires_at=EXPIRES,
            info={"CFBundleName": "Sales", "UIRequiredDeviceCapabilities": ["arm64"]},
        ),
        **more,
    )


async def test_the_first_upload_creates_the_app_and_comes_back_whole(storage: SqlStorage) -> None:
    stored = await storage.add_app_version(upload(), NOW)
    assert (stored.bundle_id, stored.version_id, stored.short_version, stored.build) == (
        "com.example.sales", 1, "1.0", "1"
    )  # fmt: skip
    assert (stored.display_name, stored.minimum_os, stored.device_family) == (
        "Sales",
        "16.0",
        (1, 2),
    )
    assert (stored.size, stored.icon_sha256, stored.provisioning_uuid) == (1234, "c" * 64, "PROV-1")
    assert stored.provisioning_expires_at == EXPIRES
    assert stored.info == {"CFBundleName": "Sales", "UIRequiredDeviceCapabilities": ["arm64"]}
    assert stored.created_at == NOW
    assert stored.created_at.tzinfo is not None
    assert await storage.app_version("com.example.sales") == stored
    assert await storage.app_version("com.example.sales", 1) == stored
    assert await storage.app_versions("com.example.sales") == [stored]
    app = await storage.get_app("com.example.sales")
    assert app is not None
    assert (app.display_name, app.latest_version_id, app.created_at, app.updated_at) == (
        "Sales", 1, NOW, NOW
    )  # fmt: skip
    assert (app.icon_sha256, app.description, app.catalog_groups) == (None, "", ())
    assert await storage.list_apps() == [app]


async def test_a_new_version_becomes_the_latest_and_names_the_app(storage: SqlStorage) -> None:
    first = await storage.add_app_version(upload(), NOW)
    later = NOW + timedelta(hours=1)
    second = await storage.add_app_version(upload("1.1", "2", display_name="Sales 2"), later)
    assert second.version_id == 2
    assert await storage.app_version("com.example.sales") == second
    assert await storage.app_version("com.example.sales", 1) == first
    assert await storage.app_versions("com.example.sales") == [first, second]
    app = await storage.get_app("com.example.sales")
    assert app is not None
    assert (app.display_name, app.latest_version_id, app.created_at, app.updated_at) == (
        "Sales 2", 2, NOW, later
    )  # fmt: skip
    assert await storage.app_version("com.example.sales", 3) is None
    assert await storage.app_version("com.example.other") is None
    assert await storage.get_app("com.example.other") is None


async def test_the_same_version_twice_is_refused_unless_replaced(storage: SqlStorage) -> None:
    first = await storage.add_app_version(upload(), NOW)
    await storage.add_app_version(upload("1.1", "2", display_name="Sales 2"), NOW)
    with pytest.raises(AppVersionExistsError) as refused:
        await storage.add_app_version(upload(sha256="d" * 64), NOW + timedelta(hours=1))
    assert refused.value.existing == first
    assert "replace" in str(refused.value)
    assert await storage.app_version("com.example.sales", 1) == first
    # Another build of the same short version is another version.
    assert (await storage.add_app_version(upload("1.0", "1b"), NOW)).version_id == 3

    later = NOW + timedelta(hours=2)
    replaced = await storage.add_app_version(
        upload(sha256="d" * 64, display_name="Old name"), later, replace=True
    )
    assert (replaced.version_id, replaced.sha256, replaced.created_at) == (1, "d" * 64, later)
    assert await storage.app_version("com.example.sales", 1) == replaced
    app = await storage.get_app("com.example.sales")
    assert app is not None  # an older version replaced: the latest still names the app
    assert (app.latest_version_id, app.display_name, app.updated_at) == (3, "Sales", later)
    assert len(await storage.app_versions("com.example.sales")) == 3


async def test_replacing_the_latest_renames_the_app(storage: SqlStorage) -> None:
    await storage.add_app_version(upload(), NOW)
    replaced = await storage.add_app_version(upload(display_name="Sales Pro"), NOW, replace=True)
    assert replaced.version_id == 1
    app = await storage.get_app("com.example.sales")
    assert app is not None
    assert (app.display_name, app.latest_version_id) == ("Sales Pro", 1)


async def test_find_a_version_by_its_numbers(storage: SqlStorage) -> None:
    stored = await storage.add_app_version(upload("2.0", "20"), NOW)
    assert await storage.find_app_version("com.example.sales", "2.0", "20") == stored
    assert await storage.find_app_version("com.example.sales", "2.0", "21") is None
    assert await storage.find_app_version("com.example.other", "2.0", "20") is None


async def test_the_same_upload_twice_at_once_is_stored_once(storage: SqlStorage) -> None:
    results = await asyncio.gather(
        storage.add_app_version(upload(), NOW),
        storage.add_app_version(upload(), NOW),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, AppVersionExistsError)]
    assert len(refused) == 1, results
    assert len(await storage.app_versions("com.example.sales")) == 1


async def test_different_versions_at_once_are_numbered_in_turn(storage: SqlStorage) -> None:
    uploads = [upload("1.0", str(build)) for build in range(4)]
    stored = await asyncio.gather(*(storage.add_app_version(u, NOW) for u in uploads))
    assert sorted(v.version_id for v in stored) == [1, 2, 3, 4]
    app = await storage.get_app("com.example.sales")
    assert app is not None
    assert app.latest_version_id == 4


@pytest.mark.parametrize(
    "bad",
    [
        {"bundle_id": "x" * 256},
        {"bundle_id": ""},
        {"short_version": "1" * 65},
        {"build": ""},
        {"info": {"Long": "x" * INFO_MAX_BYTES}},
    ],
)
async def test_what_the_schema_cannot_hold_is_refused(
    storage: SqlStorage, bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"must be|bytes, over"):
        await storage.add_app_version(upload(**bad), NOW)
    assert await storage.list_apps() == []


async def test_long_reported_text_is_cut_to_fit(storage: SqlStorage) -> None:
    stored = await storage.add_app_version(upload(display_name="N" * 300, minimum_os="9" * 40), NOW)
    assert (len(stored.display_name), len(stored.minimum_os or "")) == (255, 32)
    app = await storage.update_app(
        "com.example.sales", AppChanges(description="d" * (DESCRIPTION_MAX_CHARS + 50)), NOW
    )
    assert app is not None
    assert len(app.description) == DESCRIPTION_MAX_CHARS
    await storage.save_device_apps([device_app("U1", error="e" * 5000)])
    (row,) = await storage.device_apps(device_id="U1")
    assert row.error == "e" * 2000


async def test_an_admin_edits_the_description_icon_and_catalog_groups(storage: SqlStorage) -> None:
    await storage.add_app_version(upload(), NOW)
    later = NOW + timedelta(minutes=5)
    edited = await storage.update_app(
        "com.example.sales",
        AppChanges(description="Orders on the road", catalog_groups=["sales", "it", "sales"],
                   icon_sha256="e" * 64),
        later,
    )  # fmt: skip
    assert edited is not None
    assert (edited.description, edited.catalog_groups, edited.icon_sha256) == (
        "Orders on the road", ("it", "sales"), "e" * 64
    )  # fmt: skip
    assert edited.updated_at == later
    assert await storage.get_app("com.example.sales") == edited
    # None leaves a field alone; clear_icon goes back to the version's own icon.
    kept = await storage.update_app("com.example.sales", AppChanges(clear_icon=True), later)
    assert kept is not None
    assert (kept.description, kept.catalog_groups, kept.icon_sha256) == (
        "Orders on the road", ("it", "sales"), None
    )  # fmt: skip
    emptied = await storage.update_app("com.example.sales", AppChanges(catalog_groups=[]), later)
    assert emptied is not None
    assert emptied.catalog_groups == ()
    assert await storage.update_app("com.example.none", AppChanges(description="x"), NOW) is None
    with pytest.raises(ValueError, match="catalog group"):
        await storage.update_app("com.example.sales", AppChanges(catalog_groups=["g" * 256]), NOW)
    with pytest.raises(ValueError, match="catalog group"):
        await storage.update_app("com.example.sales", AppChanges(catalog_groups=[""]), NOW)


async def test_the_catalog_shows_the_apps_of_the_users_groups(storage: SqlStorage) -> None:
    for bundle_id, name, groups in (
        ("com.example.sales", "Sales", ["sales"]),
        ("com.example.wiki", "Atlas", [EVERYONE]),
        ("com.example.admin", "Zebra admin", ["it", "sales"]),
        ("com.example.hidden", "Hidden", []),
    ):
        await storage.add_app_version(upload(bundle_id=bundle_id, display_name=name), NOW)
        await storage.update_app(bundle_id, AppChanges(catalog_groups=groups), NOW)
    newest = await storage.add_app_version(upload("2.0", "2", display_name="Sales"), NOW)

    catalog = await storage.entitled_apps(["sales", "staff"])
    assert [e.app.bundle_id for e in catalog] == [
        "com.example.wiki", "com.example.sales", "com.example.admin"
    ]  # fmt: skip
    assert catalog[1].latest == newest
    assert catalog[2].app.catalog_groups == ("it", "sales")
    assert [e.app.bundle_id for e in await storage.entitled_apps([])] == ["com.example.wiki"]
    assert [e.app.bundle_id for e in await storage.entitled_apps(["it"])] == [
        "com.example.wiki", "com.example.admin"
    ]  # fmt: skip


async def test_assignments_are_added_once_and_removed(storage: SqlStorage) -> None:
    for bundle_id in ("com.example.sales", "com.example.wiki"):
        await storage.add_app_version(upload(bundle_id=bundle_id), NOW)
    await storage.set_app_assignments("com.example.sales", TargetKind.GROUP, ["sales", "it"],
                                      assigned=True)  # fmt: skip
    await storage.set_app_assignments("com.example.sales", TargetKind.GROUP, ["sales"],
                                      assigned=True)  # fmt: skip
    await storage.set_app_assignments("com.example.wiki", TargetKind.ALL, [""], assigned=True)
    assert await storage.app_assignments("com.example.sales") == [
        Assignment("com.example.sales", TargetKind.GROUP, "it"),
        Assignment("com.example.sales", TargetKind.GROUP, "sales"),
    ]
    await storage.set_app_assignments("com.example.sales", TargetKind.GROUP, ["it"],
                                      assigned=False)  # fmt: skip
    await storage.set_app_assignments("com.example.sales", TargetKind.DEVICE, ["U9"],
                                      assigned=False)  # fmt: skip
    assert await storage.app_assignments() == [
        Assignment("com.example.sales", TargetKind.GROUP, "sales"),
        Assignment("com.example.wiki", TargetKind.ALL, ""),
    ]
    assert await storage.assignments() == []  # the profile library's are apart


async def test_delete_takes_every_row_of_the_app(storage: SqlStorage) -> None:
    for bundle_id in ("com.example.sales", "com.example.wiki"):
        await storage.add_app_version(upload(bundle_id=bundle_id), NOW)
        await storage.update_app(bundle_id, AppChanges(catalog_groups=[EVERYONE]), NOW)
        await storage.set_app_assignments(bundle_id, TargetKind.ALL, [""], assigned=True)
        await storage.save_device_apps([device_app("U1", bundle_id)])
    await storage.add_app_version(upload("2.0", "2"), NOW)

    assert await storage.delete_app("com.example.sales")
    assert await storage.get_app("com.example.sales") is None
    assert await storage.app_versions("com.example.sales") == []
    assert await storage.app_assignments("com.example.sales") == []
    assert await storage.device_apps(bundle_id="com.example.sales") == []
    assert [e.app.bundle_id for e in await storage.entitled_apps([])] == ["com.example.wiki"]
    assert [a.bundle_id for a in await storage.list_apps()] == ["com.example.wiki"]
    assert len(await storage.device_apps(device_id="U1")) == 1
    assert not await storage.delete_app("com.example.sales")
    # Uploading it again starts from version 1.
    assert (await storage.add_app_version(upload(), NOW)).version_id == 1


async def test_a_file_is_referenced_by_a_version_or_an_app_icon(storage: SqlStorage) -> None:
    stored = await storage.add_app_version(upload(), NOW)
    await storage.update_app("com.example.sales", AppChanges(icon_sha256="f" * 64), NOW)
    for digest in (stored.sha256, "c" * 64, "f" * 64):
        assert await storage.file_referenced(digest)
    assert not await storage.file_referenced("0" * 64)
    await storage.delete_app("com.example.sales")
    assert not await storage.file_referenced(stored.sha256)
    assert not await storage.file_referenced("f" * 64)


async def test_device_rows_are_upserted_and_found(storage: SqlStorage) -> None:
    queued = device_app("U1", state=AppState.QUEUED, command_uuid="C1")
    await storage.save_device_apps(
        [queued, device_app("U2", state=AppState.FAILED, error="Could not validate manifest"),
         device_app("U1", "com.example.wiki", state=AppState.MANAGED)]
    )  # fmt: skip
    assert await storage.device_app_by_command("U1", "C1") == queued
    assert await storage.device_app_by_command("U2", "C1") is None
    managed = replace(
        queued, state=AppState.MANAGED, installed_version_id=1, installed_version="1.0 (1)",
        command_uuid=None, attempts=1, updated_at=NOW + timedelta(minutes=1),
    )  # fmt: skip
    await storage.save_device_apps([managed])
    assert await storage.device_app_by_command("U1", "C1") is None
    assert [(r.device_id, r.bundle_id) for r in await storage.device_apps(device_id="U1")] == [
        ("U1", "com.example.sales"), ("U1", "com.example.wiki")
    ]  # fmt: skip
    assert await storage.device_apps(bundle_id="com.example.sales", device_id="U1") == [managed]
    by_state = await storage.device_apps(bundle_id="com.example.sales", state=AppState.FAILED)
    assert [r.device_id for r in by_state] == ["U2"]
    assert await storage.app_state_counts("com.example.sales") == {
        AppState.MANAGED: 1, AppState.FAILED: 1
    }  # fmt: skip
    assert await storage.app_state_counts("com.example.none") == {}
    await storage.save_device_apps([])


async def test_the_picker_hands_out_due_rows_earliest_first(storage: SqlStorage) -> None:
    pending, queued = AppState.UPDATE_PENDING, AppState.QUEUED
    rows = [
        device_app("U1", state=pending, next_attempt_at=NOW - timedelta(minutes=1)),
        device_app("U2", state=pending, next_attempt_at=NOW - timedelta(minutes=3)),
        device_app("U3", state=pending, next_attempt_at=NOW),  # due at exactly now
        device_app("U0", state=pending, next_attempt_at=NOW - timedelta(minutes=1)),  # a tie
        device_app("U4", state=pending, next_attempt_at=NOW + timedelta(seconds=1)),  # not yet
        device_app("U5", state=pending),  # not waiting for anything
        device_app("U6", state=queued, next_attempt_at=NOW - timedelta(minutes=2)),  # a retry
    ]
    await storage.save_device_apps(rows)
    due = await storage.due_device_apps(NOW, 10, state=pending)
    assert [r.device_id for r in due] == ["U2", "U0", "U1", "U3"]
    assert [r.device_id for r in await storage.due_device_apps(NOW, 2, state=pending)] == [
        "U2", "U0"
    ]  # fmt: skip
    assert [r.device_id for r in await storage.due_device_apps(NOW, 3)] == ["U2", "U6", "U0"]
    assert await storage.due_device_apps(NOW - timedelta(hours=1), 10) == []
    later = await storage.due_device_apps(NOW + timedelta(minutes=1), 10, state=pending)
    assert [r.device_id for r in later][-1] == "U4"


async def test_apps_concern_a_device_with_an_assignment_or_a_row(storage: SqlStorage) -> None:
    assert not await storage.apps_concern("U1")
    await storage.save_device_apps([device_app("U1")])
    assert (await storage.apps_concern("U1"), await storage.apps_concern("U2")) == (True, False)
    await storage.add_app_version(upload(), NOW)
    await storage.set_app_assignments("com.example.sales", TargetKind.DEVICE, ["U3"],
                                      assigned=True)  # fmt: skip
    assert await storage.apps_concern("U2")  # reconciling U2 must look: assignments changed
