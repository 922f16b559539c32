"""The console's Profiles pages on the real app: the library, a profile's page (versions,
assignments, per-device status), assigning to a group installs on its devices, upload and
delete by admins only, every refusal changing nothing, names and device errors escaped,
and a profile's password on no page a viewer sees."""

from __future__ import annotations

import plistlib
from pathlib import Path

import httpx
import pytest

from orchardist.profiles import envelope
from orchardist.profiles.spec import build_profile
from orchardist.storage.audit import AuditQuery
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
SECRET = "console-wifi-secret-42"
HOSTILE = '<script>alert("x")</script> & "Kim\'s"'
PAGE = "/console/profiles/com.example.wifi"


def _profile(name: str = "Office Wi-Fi", ssid: str = "Office") -> bytes:
    spec = {
        "identifier": "com.example.wifi",
        "name": name,
        "payloads": [
            {"type": "wifi", "SSID_STR": ssid, "EncryptionType": "WPA2", "Password": SECRET}
        ],
    }
    return envelope.serialize(build_profile(spec, base_dir=Path("/nonexistent"), env={}))


async def _upload(client: httpx.AsyncClient, token: str, data: bytes) -> httpx.Response:
    files = {"profile": ("office.mobileconfig", data, "application/x-apple-aspen-config")}
    return await client.post("/console/profiles/upload", data={"csrf_token": token}, files=files)


async def _enrolled(server: Server, udid: str, index: int, serial: str) -> Device:
    device = await server.device(udid, index)
    await server.enroll(device)
    await server.services.storage.refresh_facts(udid, {"serial_number": serial})  # type: ignore[attr-defined]
    return device


async def _audit(server: Server) -> set[tuple[str, str, str, tuple[str, ...]]]:
    entries = await server.services.storage.audit_entries(AuditQuery())
    return {(e.actor, e.action, e.outcome.value, tuple(e.targets)) for e in entries}


async def test_upload_list_and_show_without_secrets(server: Server) -> None:
    await add_account(server, "ann", "admin")
    await add_account(server, "vera", "viewer")
    async with browser(server) as admin:
        token = await signed_in(admin, "ann")
        stored = await _upload(admin, token, _profile(HOSTILE))
        assert (stored.status_code, stored.headers["location"]) == (
            303,
            f"{PAGE}?done=saved&version=1",
        )
        again = await _upload(admin, token, _profile(HOSTILE))
        assert again.headers["location"] == f"{PAGE}?done=unchanged&version=1"
        page = await admin.get(again.headers["location"])
        assert "Not stored: version 1 has this content already." in page.text
        assert f'href="{PAGE}/content"' in page.text
        download = await admin.get(f"{PAGE}/content?version=1")
        assert download.status_code == 200
        assert plistlib.loads(download.content)["PayloadContent"][0]["Password"] == SECRET
        assert "com.example.wifi-v1.mobileconfig" in download.headers["content-disposition"]
        bad = await _upload(admin, token, b"<plist><dict></dict></plist>")
        assert (bad.status_code, "Not stored" in bad.text) == (422, True)
    async with browser(server) as viewer:
        await signed_in(viewer, "vera")
        seen = [
            await viewer.get(path)
            for path in ("/console/profiles", PAGE, f"{PAGE}/status", f"{PAGE}/status?poll=3")
        ]
        refused = await viewer.get(f"{PAGE}/content")
    assert [r.status_code for r in seen] == [200, 200, 200, 200]
    assert refused.status_code == 403
    library, detail = seen[0].text, seen[1].text
    assert 'href="/console/profiles/com.example.wifi"' in library
    assert "Wi-Fi" in library
    for html in (library, detail):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;Kim&#39;s&#34;" in html
    for response in (*seen, refused):
        assert SECRET not in response.text
    # a viewer sees no control that changes anything, and no download
    for control in (
        "/console/profiles/upload",
        "/console/profiles/new",
        "/assign",
        "/unassign",
        "/delete",
        "/content",
    ):
        assert control not in library + detail
    assert (await server.services.storage.profile_version("com.example.wifi")) is not None
    recorded = await _audit(server)
    assert ("ann", "profile.upload", "ok", ("com.example.wifi",)) in recorded
    assert ("ann", "profile.upload", "failed", ()) in recorded


async def test_assign_to_a_group_installs_and_shows_each_device(server: Server) -> None:
    await server.services.profiles.upload(_profile())  # type: ignore[union-attr]
    sales = await _enrolled(server, "UDID-SALES", 400, "SER-SALES")
    other = await _enrolled(server, "UDID-OTHER", 401, "SER-OTHER")
    await server.services.storage.set_group("sales", [sales.udid])
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        page = await client.get(PAGE)
        assert f'action="{PAGE}/assign"' in page.text
        assert 'value="sales"' in page.text
        assert f'action="{PAGE}/delete"' not in page.text  # an operator assigns, not deletes
        assert "/content" not in page.text
        assigned = await client.post(
            f"{PAGE}/assign", data={"csrf_token": token, "groups": "sales"}
        )
        assert assigned.headers["location"] == f"{PAGE}?done=assigned&installs=1"
        pending = await client.get(assigned.headers["location"])
        assert "Assigned: 1 install(s) queued." in pending.text
        assert 'hx-get="/console/profiles/com.example.wifi/status?poll=1"' in pending.text
        sent = plistlib.loads((await server.report(sales, "Idle")).content)
        assert sent["Command"]["RequestType"] == "InstallProfile"
        assert (await server.report(other, "Idle")).content == b""  # not in the group
        await server.report(sales, "Acknowledged", CommandUUID=sent["CommandUUID"])
        status = await client.get(f"{PAGE}/status?poll=1")
        assert '<td class="state-installed">installed</td>' in status.text
        assert "hx-get" not in status.text  # nothing pending: it stops asking

        by_serial = await client.post(
            f"{PAGE}/assign", data={"csrf_token": token, "devices": "SER-OTHER"}
        )
        assert by_serial.headers["location"] == f"{PAGE}?done=assigned&installs=1"
        removed = await client.post(
            f"{PAGE}/unassign", data={"csrf_token": token, "kind": "group", "target": "sales"}
        )
        assert removed.headers["location"] == f"{PAGE}?done=unassigned&removals=1"
    sent = plistlib.loads((await server.report(sales, "Idle")).content)
    assert sent["Command"] == {"RequestType": "RemoveProfile", "Identifier": "com.example.wifi"}
    assert (
        plistlib.loads((await server.report(other, "Idle")).content)["Command"]["RequestType"]
        == "InstallProfile"
    )
    assignments = await server.services.storage.assignments("com.example.wifi")
    assert [(a.kind.value, a.target) for a in assignments] == [("device", "UDID-OTHER")]
    recorded = await _audit(server)
    assert {
        ("olga", "profile.assign", "ok", ("com.example.wifi", "group:sales")),
        ("olga", "profile.assign", "ok", ("com.example.wifi", "UDID-OTHER")),
        ("olga", "profile.unassign", "ok", ("com.example.wifi", "group:sales")),
    } <= recorded


async def test_a_device_refusing_it_shows_its_error_escaped(server: Server) -> None:
    await server.services.profiles.upload(_profile())  # type: ignore[union-attr]
    device = await _enrolled(server, "UDID-REFUSES", 402, "SER-R")
    await server.services.profiles.assign("com.example.wifi", devices=[device.udid])  # type: ignore[union-attr]
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    await server.report(
        device,
        "Error",
        CommandUUID=sent["CommandUUID"],
        ErrorChain=[
            {
                "ErrorDomain": "MCProfileErrorDomain",
                "ErrorCode": 1009,
                "USEnglishDescription": HOSTILE,
            }
        ],
    )
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        await signed_in(client, "vera")
        page = await client.get(PAGE)
    assert '<td class="state-failed">failed</td>' in page.text
    assert "MCProfileErrorDomain 1009: &lt;script&gt;alert" in page.text
    assert "<script>alert" not in page.text


async def test_refusals_change_nothing(server: Server) -> None:
    await server.services.profiles.upload(_profile())  # type: ignore[union-attr]
    await _enrolled(server, "UDID-KEEP", 403, "SER-KEEP")
    await server.services.storage.set_group("sales", ["UDID-KEEP"])
    await add_account(server, "olga", "operator")
    await add_account(server, "vera", "viewer")
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        forged = [
            await client.post(
                f"{PAGE}/delete", data={"csrf_token": token, "confirm": "com.example.wifi"}
            ),
            await _upload(client, token, _profile(ssid="Forged")),
        ]
        assert [f.status_code for f in forged] == [403, 403]
        assert "that needs admin" in forged[0].text
        unknown = [
            await client.post(f"{PAGE}/assign", data={"csrf_token": token, "groups": "nope"}),
            await client.post(f"{PAGE}/assign", data={"csrf_token": token, "devices": "NOPE"}),
            await client.post(f"{PAGE}/assign", data={"csrf_token": token}),
            await client.post(
                "/console/profiles/com.example.none/assign", data={"csrf_token": token, "all": "on"}
            ),
        ]
        assert [u.status_code for u in unknown] == [422, 422, 422, 404]
        assert "There is no group &#39;nope&#39;: nothing was changed." in unknown[0].text
        no_csrf = await client.post(f"{PAGE}/assign", data={"groups": "sales"})
        assert (no_csrf.status_code, "could not be verified" in no_csrf.text) == (403, True)
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        viewer = await client.post(f"{PAGE}/assign", data={"csrf_token": token, "all": "on"})
        assert viewer.status_code == 403
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        unconfirmed = await client.post(
            f"{PAGE}/delete", data={"csrf_token": token, "confirm": "com.example"}
        )
        assert (unconfirmed.status_code, "type its identifier exactly" in unconfirmed.text) == (
            422,
            True,
        )
    assert await server.services.storage.assignments("com.example.wifi") == []
    assert [p.latest_version for p in await server.services.storage.list_profiles()] == [1]
    recorded = await _audit(server)
    assert {
        ("olga", "profiles.edit", "denied", (f"{PAGE}/delete",)),
        ("olga", "profiles.edit", "denied", ("/console/profiles/upload",)),
        ("vera", "profiles.assign", "denied", (f"{PAGE}/assign",)),
        ("olga", "profile.assign", "failed", ("com.example.wifi", "group:nope")),
        ("ann", "profile.delete", "failed", ("com.example.wifi",)),
    } <= recorded


async def test_an_admin_deletes_and_devices_lose_it(server: Server) -> None:
    await server.services.profiles.upload(_profile())  # type: ignore[union-attr]
    device = await _enrolled(server, "UDID-GONE", 404, "SER-GONE")
    await server.services.profiles.assign("com.example.wifi", everyone=True)  # type: ignore[union-attr]
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    await server.report(device, "Acknowledged", CommandUUID=sent["CommandUUID"])
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        page = await client.get(PAGE)
        assert "every enrolled device" in page.text
        deleted = await client.post(
            f"{PAGE}/delete", data={"csrf_token": token, "confirm": "com.example.wifi"}
        )
        assert deleted.headers["location"] == "/console/profiles?done=deleted&removals=1"
        library = await client.get(deleted.headers["location"])
        assert "Deleted: 1 removal(s) queued." in library.text
        assert "No profiles yet." in library.text
        assert (await client.get(PAGE)).status_code == 404
    sent = plistlib.loads((await server.report(device, "Idle")).content)
    assert sent["Command"]["RequestType"] == "RemoveProfile"
    assert ("ann", "profile.delete", "ok", ("com.example.wifi",)) in await _audit(server)
