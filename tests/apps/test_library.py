"""The app library on every backend: uploads (versions, refusals that leave nothing,
replace), assignment and reconciliation, InstallApplication through the paced roll-out,
the device's answers moving each device's state, removal."""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchardist.apps.files import FileTooLargeError, LocalFileStore
from orchardist.apps.library import AppExistsError, AppLibrary, AppRejectedError, Uploaded
from orchardist.storage.apps import AppState
from tests.apps.factory import build_ipa, build_mobileprovision
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
BUNDLE = "com.example.expenses"


async def chunks(path: Path, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(size):
            yield piece


def library_of(server: Server) -> AppLibrary:
    assert server.services.apps is not None
    return server.services.apps


async def upload(server: Server, path: Path, **options: Any) -> Uploaded:
    return await library_of(server).upload(chunks(path), **options)


def stored_files(server: Server) -> set[str]:
    files = server.services.files
    assert isinstance(files, LocalFileStore)
    return {p.name for p in files.root.glob("??/??/*")}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def next_command(server: Server, device: Device) -> dict[str, Any]:
    reply = await server.report(device, "Idle")
    assert reply.status_code == 200
    assert reply.content, "no command for the device"
    sent: dict[str, Any] = plistlib.loads(reply.content)
    return sent


async def enrolled(server: Server, count: int, first: int = 160) -> list[Device]:
    devices = [await server.device(f"UDID-{n}", first + n) for n in range(count)]
    for device in devices:
        await server.enroll(device)
    return devices


async def states(server: Server) -> dict[str, str]:
    rows = await server.services.storage.device_apps(bundle_id=BUNDLE)
    return {row.device_id: row.state.value for row in rows}


async def test_upload_versions_and_refusals(server: Server, tmp_path: Path) -> None:
    first = build_ipa(tmp_path / "1.ipa")
    done = await upload(server, first)
    version = done.version
    assert (version.bundle_id, version.short_version, version.build, version.version_id) == (
        BUNDLE, "1.0", "1", 1,
    )  # fmt: skip
    assert (version.sha256, version.size) == (sha256_of(first), first.stat().st_size)
    assert (version.display_name, version.device_family) == ("Expenses", (1, 2))
    assert version.info["team_id"] == "ABCDE12345"
    assert version.provisioning_uuid is not None
    assert (done.replaced, done.warnings, done.updating) == (False, (), 0)
    assert version.icon_sha256 is not None
    assert stored_files(server) == {version.sha256, version.icon_sha256}
    files = server.services.files
    assert files is not None
    with files.open(version.icon_sha256) as icon:
        assert icon.read(8) == b"\x89PNG\r\n\x1a\n"

    # The same version again is refused (the file stays: that version is it) unless
    # replaced; a rebuilt file replaces the old one, which is deleted.
    with pytest.raises(AppExistsError, match="replace it to upload it again"):
        await upload(server, first)
    rebuilt = build_ipa(tmp_path / "1b.ipa", display_name="Expenses Rebuilt")
    replaced = await upload(server, rebuilt, replace=True)
    assert (replaced.replaced, replaced.version.version_id) == (True, 1)
    assert replaced.version.sha256 == sha256_of(rebuilt)
    assert version.sha256 not in stored_files(server)
    second = await upload(server, build_ipa(tmp_path / "2.ipa", version="1.1", build="2"))
    assert second.version.version_id == 2
    app = await server.services.storage.get_app(BUNDLE)
    assert app is not None
    assert app.latest_version_id == 2

    # Refused: nothing stored, nothing left in the file store.
    before = stored_files(server)
    other = build_ipa(tmp_path / "other.ipa", bundle_id="com.example.other")
    with pytest.raises(AppRejectedError, match=r"not a version of com\.example\.expenses"):
        await upload(server, other, expect_bundle_id=BUNDLE)
    expired = build_mobileprovision(
        app_id=f"ABCDE12345.{BUNDLE}", expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    refusals = {
        "not a zip": tmp_path / "text.ipa",
        "expired": build_ipa(tmp_path / "x.ipa", version="3", provisioning=expired),
        "CFBundleShortVersionString": build_ipa(tmp_path / "v.ipa", version="9" * 65),
        "CFBundleIdentifier": build_ipa(
            tmp_path / "n.ipa", info_overrides={"CFBundleIdentifier": None}
        ),
    }
    refusals["not a zip"].write_text("hello")
    for words, path in refusals.items():
        with pytest.raises(AppRejectedError) as refused:
            await upload(server, path)
        assert words in str(refused.value), str(refused.value)
    assert stored_files(server) == before
    assert [v.version_id for v in await server.services.storage.app_versions(BUNDLE)] == [1, 2]
    assert await server.services.storage.get_app("com.example.other") is None


async def test_too_large_and_cut_off_leave_nothing(server: Server, tmp_path: Path) -> None:
    library = library_of(server)
    big = build_ipa(tmp_path / "big.ipa", size_padding=3 * 1024 * 1024)
    library.max_upload_bytes = 2 * 1024 * 1024
    with pytest.raises(FileTooLargeError):
        await upload(server, big)

    async def cut_off() -> AsyncIterator[bytes]:
        async for piece in chunks(big):
            yield piece
            raise ConnectionResetError("the client went away")

    library.max_upload_bytes = 10 * 1024 * 1024
    with pytest.raises(ConnectionResetError):
        await library.upload(cut_off())
    assert stored_files(server) == set()
    assert await server.services.storage.list_apps() == []


async def test_assign_install_follow_and_remove(server: Server, tmp_path: Path) -> None:
    library = library_of(server)
    devices = await enrolled(server, 3)
    await upload(server, build_ipa(tmp_path / "1.ipa"))
    await server.services.storage.set_group("sales", ["UDID-1"])
    done = await library.assign(BUNDLE, devices=["UDID-0"], groups=["sales"])
    assert (done.installs, done.removals) == (2, 0)
    assert await states(server) == {"UDID-0": "update_pending", "UDID-1": "update_pending"}
    assert await library.roll_out() == 2
    assert await library.roll_out() == 0  # nothing due: both wait for the devices

    # The device gets InstallApplication with a signed manifest link on the public URL.
    sent = await next_command(server, devices[0])
    command = sent["Command"]
    assert command["RequestType"] == "InstallApplication"
    assert command["ManagementFlags"] == 1
    base = server.services.settings.base_url
    assert command["ManifestURL"].startswith(f"{base}/apps/manifest/{BUNDLE}/1.plist?t=")
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"],
                        Identifier=BUNDLE, State="Installing")  # fmt: skip
    (row,) = await server.services.storage.device_apps(device_id="UDID-0")
    assert (row.state, row.command_uuid, row.attempts) == (AppState.INSTALLING, None, 1)
    # It is asked how the install goes, and the answer settles it.
    asked = await next_command(server, devices[0])
    assert asked["Command"] == {"RequestType": "ManagedApplicationList"}
    listed = {BUNDLE: {"Status": "Managed", "ManagementFlags": 1}}
    await server.report(devices[0], "Acknowledged", CommandUUID=asked["CommandUUID"],
                        ManagedApplicationList=listed)  # fmt: skip
    (row,) = await server.services.storage.device_apps(device_id="UDID-0")
    assert (row.state, row.installed_version_id, row.next_attempt_at) == (
        AppState.MANAGED, 1, None,
    )  # fmt: skip

    # The other device cannot fetch the manifest: failed in words, retried later.
    sent = await next_command(server, devices[1])
    chain = [{"ErrorDomain": "DeviceManagement.error", "ErrorCode": 2604,
              "USEnglishDescription": "Could not validate manifest"}]  # fmt: skip
    await server.report(devices[1], "Error", CommandUUID=sent["CommandUUID"], ErrorChain=chain)
    (failed,) = await server.services.storage.device_apps(device_id="UDID-1")
    assert failed.state == AppState.FAILED
    assert "could not fetch or read the app's manifest" in (failed.error or "")
    assert failed.next_attempt_at is not None  # it may pass: tried again

    # Assigned to all: the third device too; unassigned from UDID-0 and all: removed.
    assert (await library.assign(BUNDLE, everyone=True)).installs == 1
    done = await library.assign(BUNDLE, devices=["UDID-0"], everyone=True, assigned=False)
    assert done.removals == 1  # UDID-0 had it; UDID-2 never got it; UDID-1 keeps its group
    assert (await states(server))["UDID-2"] == "removed"
    sent = await next_command(server, devices[0])
    assert sent["Command"] == {"RequestType": "RemoveApplication", "Identifier": BUNDLE}
    await server.report(devices[0], "Acknowledged", CommandUUID=sent["CommandUUID"])
    (row,) = await server.services.storage.device_apps(device_id="UDID-0")
    assert (row.state, row.installed_version_id, row.desired_version_id) == (
        AppState.REMOVED, None, None,
    )  # fmt: skip


async def test_answers_move_the_state(server: Server, tmp_path: Path) -> None:
    library = library_of(server)
    devices = await enrolled(server, 4, first=170)
    await upload(server, build_ipa(tmp_path / "1.ipa"))
    await library.assign(BUNDLE, everyone=True)
    await library.roll_out()
    answers: list[tuple[str, dict[str, Any]]] = [
        ("Acknowledged", {"State": "Prompting"}),
        ("Error", {"RejectionReason": "AppAlreadyInstalled"}),
        ("Acknowledged", {"State": "UserRejected"}),
        ("NotNow", {}),
    ]
    for device, (status, fields) in zip(devices, answers, strict=True):
        sent = await next_command(server, device)
        await server.report(device, status, CommandUUID=sent["CommandUUID"], **fields)
    rows = {r.device_id: r for r in await server.services.storage.device_apps()}
    assert rows["UDID-0"].state == AppState.PROMPTING
    assert rows["UDID-1"].state == AppState.USER_INSTALLED
    assert "Ask the user to delete it" in (rows["UDID-1"].error or "")
    assert rows["UDID-2"].state == AppState.USER_DECLINED
    assert rows["UDID-2"].error == "the user declined the installation."
    # NotNow: still queued, the same command offered again at the next check-in.
    put_off = rows["UDID-3"]
    assert (put_off.state, put_off.command_uuid is not None) == (AppState.QUEUED, True)
    again = await next_command(server, devices[3])
    assert again["CommandUUID"] == put_off.command_uuid

    # The prompting device: the user accepts later, its list says Managed; InstalledApplication
    # List names the version; later the app is gone from the list: missing, installed again.
    asked = await next_command(server, devices[0])
    await server.report(devices[0], "Acknowledged", CommandUUID=asked["CommandUUID"],
                        ManagedApplicationList={BUNDLE: {"Status": "Managed"}})  # fmt: skip
    uuid = await server.queue("InstalledApplicationList", {}, devices[0])
    await server.report(devices[0], "Idle")
    installed = [{"Identifier": BUNDLE, "ShortVersion": "1.0", "Version": "1", "Name": "X"}]
    await server.report(devices[0], "Acknowledged", CommandUUID=uuid,
                        InstalledApplicationList=installed)  # fmt: skip
    (row,) = await server.services.storage.device_apps(device_id="UDID-0")
    assert (row.state, row.installed_version) == (AppState.MANAGED, "1.0 (1)")
    uuid = await server.queue("ManagedApplicationList", {}, devices[0])
    await server.report(devices[0], "Idle")
    await server.report(devices[0], "Acknowledged", CommandUUID=uuid, ManagedApplicationList={})
    (row,) = await server.services.storage.device_apps(device_id="UDID-0")
    assert row.state == AppState.UPDATE_PENDING  # missing, and at once marked to reinstall


async def test_a_new_version_reaches_every_device_at_the_pace(backend: str, tmp_path: Path) -> None:
    from tests.web.mdm_server import running

    async with running(backend, tmp_path, apps={"rollout_per_minute": 2}) as server:
        library = library_of(server)
        devices = await enrolled(server, 5)
        await upload(server, build_ipa(tmp_path / "1.ipa"))
        assert (await library.assign(BUNDLE, everyone=True)).installs == 5
        start = datetime.now(UTC)
        passes = [(start, 2), (start, 0), (start + timedelta(seconds=30), 1),
                  (start + timedelta(seconds=90), 2), (start + timedelta(hours=1), 0)]  # fmt: skip
        assert [await library.roll_out(at) for at, _ in passes] == [n for _, n in passes]
        for device in devices:
            sent = await next_command(server, device)
            await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"],
                                State="Managed")  # fmt: skip
        assert set((await states(server)).values()) == {"managed"}

        # A new version: every device that has the app gets it, at the same pace.
        done = await upload(server, build_ipa(tmp_path / "2.ipa", version="1.1", build="2"))
        assert done.updating == 5
        later = start + timedelta(hours=2)
        assert await library.roll_out(later) == 2
        assert await library.roll_out(later + timedelta(seconds=60)) == 2
        assert await library.roll_out(later + timedelta(seconds=120)) == 1
        for device in devices:
            sent = await next_command(server, device)
            assert sent["Command"]["ManifestURL"].split("?")[0].endswith(f"/{BUNDLE}/2.plist")
            await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"],
                                State="Managed")  # fmt: skip
        rows = await server.services.storage.device_apps(bundle_id=BUNDLE)
        assert {(r.state, r.installed_version_id) for r in rows} == {(AppState.MANAGED, 2)}
        # Replacing the file of an older version sends nothing: devices keep the latest.
        rebuilt = build_ipa(tmp_path / "1b.ipa", display_name="Expenses Rebuilt")
        done = await upload(server, rebuilt, replace=True)
        assert (done.replaced, done.version.version_id, done.updating) == (True, 1, 0)


async def test_an_offline_device_is_pushed_then_sent_anew_then_failed(
    backend: str, tmp_path: Path
) -> None:
    from tests.web.mdm_server import running

    apps = {"retry_after_seconds": 60, "max_attempts": 2, "link_ttl_seconds": 1200}
    async with running(backend, tmp_path, apps=apps) as server:
        library, storage = library_of(server), server.services.storage
        await enrolled(server, 1)
        await upload(server, build_ipa(tmp_path / "1.ipa"))
        await library.assign(BUNDLE, devices=["UDID-0"])
        start = datetime.now(UTC)
        assert await library.roll_out(start) == 1

        async def installs(at: datetime) -> list[str]:
            commands = await storage.device_commands("UDID-0", at)
            return [c.status.value for c in commands if c.request_type == "InstallApplication"]

        # Unanswered after retry_after: pushed again, the same command still queued.
        assert await library.roll_out(start + timedelta(seconds=61)) == 0
        assert await installs(start + timedelta(seconds=61)) == ["queued"]
        assert await storage.push_backlog(start + timedelta(seconds=61)) == 1
        # Its manifest link would lapse: the command expires, a new one goes out.
        at = start + timedelta(seconds=901)  # 20 minutes, less 5 of margin
        assert await library.roll_out(at) == 1
        assert await installs(at) == ["queued", "expired"]
        (row,) = await storage.device_apps(device_id="UDID-0")
        assert (row.state, row.attempts) == (AppState.QUEUED, 2)
        # After max_attempts unanswered installs it fails, saying so.
        assert await library.roll_out(at + timedelta(seconds=901)) == 0
        (row,) = await storage.device_apps(device_id="UDID-0")
        assert row.state == AppState.FAILED
        assert "did not answer 2 install(s)" in (row.error or "")


async def test_catalog_install_and_remove_the_app(server: Server, tmp_path: Path) -> None:
    library = library_of(server)
    devices = await enrolled(server, 2, first=166)
    uploaded = await upload(server, build_ipa(tmp_path / "1.ipa"))
    with pytest.raises(LookupError, match="not enrolled"):
        await library.install_on(BUNDLE, "UDID-NONE")
    uuid = await library.install_on(BUNDLE, "UDID-0")
    sent = await next_command(server, devices[0])
    assert (sent["CommandUUID"], sent["Command"]["RequestType"]) == (uuid, "InstallApplication")
    assignments = await server.services.storage.app_assignments(BUNDLE)
    assert [(a.kind.value, a.target) for a in assignments] == [("device", "UDID-0")]
    await server.report(devices[0], "Acknowledged", CommandUUID=uuid, State="Managed")

    done = await library.remove(BUNDLE)
    assert done.removals == 1
    removal = await next_command(server, devices[0])
    assert removal["Command"] == {"RequestType": "RemoveApplication", "Identifier": BUNDLE}
    assert await server.services.storage.get_app(BUNDLE) is None
    assert uploaded.version.sha256 not in stored_files(server)
    assert stored_files(server) == set()
    # The device's answer about an app we forgot changes nothing.
    await server.report(devices[0], "Acknowledged", CommandUUID=removal["CommandUUID"])
    with pytest.raises(LookupError, match="no app"):
        await library.remove(BUNDLE)


async def test_the_same_file_twice_at_once_makes_one_version(
    server: Server, tmp_path: Path
) -> None:
    import asyncio

    path = build_ipa(tmp_path / "1.ipa")
    results = await asyncio.gather(upload(server, path), upload(server, path),
                                   return_exceptions=True)  # fmt: skip
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["AppExistsError", "Uploaded"]
    assert len(await server.services.storage.app_versions(BUNDLE)) == 1
    assert sha256_of(path) in stored_files(server)
