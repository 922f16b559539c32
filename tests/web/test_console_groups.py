"""The console's Groups pages on the real app: groups with member counts, a group's members
and profiles, and for operators create / add (by UDID or serial) / remove / delete through
the library's set_group — each recorded as group.set with the API's targets, the group's
profiles following its members. Unknown devices, forged and token-less POSTs change
nothing; names with slashes, quotes and `<script>` work in links and print escaped."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from orchardist.audit import AuditQuery, Outcome
from orchardist.profiles.spec import build_profile
from orchardist.storage.profiles import ProfileState
from orchardist.web.console import groups
from tests.web.console import add_account, browser, page_as, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert("x")</script> a/b "Kim\'s" ?#%'


async def _phones(server: Server, count: int, *, serial: str | None = None) -> list[str]:
    """Enrolled devices UDID-GRP-0… named "Phone 0"… with serials SERGRP0… (or all `serial`)."""
    udids = []
    for n in range(count):
        device = await server.device(f"UDID-GRP-{n}", 520 + n)
        await server.enroll(device)
        facts = {"device_name": f"Phone {n}", "serial_number": serial or f"SERGRP{n}"}
        await server.services.storage.refresh_facts(device.udid, facts)
        udids.append(device.udid)
    return udids


async def _wifi_for(server: Server, group: str, tmp_path: Path) -> None:
    spec = {"identifier": "com.example.wifi", "name": "Office Wi-Fi",
            "payloads": [{"type": "wifi", "SSID_STR": "Office", "EncryptionType": "WPA2",
                          "Password": {"env": "PW"}}]}  # fmt: skip
    library = server.services.profiles
    assert library is not None
    await library.add(build_profile(spec, base_dir=tmp_path, env={"PW": "wifi-secret"}))
    await library.assign("com.example.wifi", groups=[group])


async def _post(client: httpx.AsyncClient, path: str, token: str, **fields: str) -> httpx.Response:
    return await client.post(path, data={"csrf_token": token, **fields})


async def _group_sets(server: Server) -> list[tuple[str, tuple[str, ...], Outcome]]:
    entries = await server.services.audit.entries(AuditQuery(action="group.set"))
    return [(e.actor, e.targets, e.outcome) for e in reversed(entries)]


async def test_a_viewer_reads_groups_and_may_not_change_them(
    server: Server, tmp_path: Path
) -> None:
    udids = await _phones(server, 3)
    assert server.services.profiles is not None
    await server.services.profiles.set_group("sales", udids[:2])
    await _wifi_for(server, "sales", tmp_path)
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        listed = await client.get("/console/groups")
        page = await client.get("/console/groups/sales")
        forged = await _post(client, "/console/groups/members/add", token,
                             name="sales", devices=udids[2])  # fmt: skip
        deleted = await _post(client, "/console/groups/delete", token, name="sales")
    row = listed.text.split('href="/console/groups/sales">sales</a>')[1].split("</tr>")[0]
    assert re.findall(r"<td>(\d+)</td>", row) == ["2", "1"]  # members, profiles
    assert 'href="/console/devices/UDID-GRP-0">Phone 0</a>' in page.text
    assert "SERGRP1" in page.text
    assert "UDID-GRP-2" not in page.text
    assert 'href="/console/profiles/com.example.wifi">Office Wi-Fi</a>' in page.text
    assert '<form method="post" action="/console/groups' not in listed.text + page.text
    assert (forged.status_code, deleted.status_code) == (403, 403)
    assert "cannot create and change static groups" in forged.text
    assert (await server.services.storage.groups()) == {"sales": udids[:2]}
    assert await _group_sets(server) == []
    denied = await server.services.audit.entries(AuditQuery(outcome=Outcome.DENIED))
    assert [(e.actor, e.action, e.targets) for e in reversed(denied)] == [
        ("vera", "groups.edit", ("/console/groups/members/add",)),
        ("vera", "groups.edit", ("/console/groups/delete",)),
    ]


async def test_an_operator_builds_a_group_by_udid_and_serial(
    server: Server, tmp_path: Path
) -> None:
    udids = await _phones(server, 3)
    await _wifi_for(server, "lab", tmp_path)
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        made = await _post(client, "/console/groups", token, name=" lab ",
                           devices=f"{udids[0]}\nsergrp1")  # fmt: skip
        assert made.headers["location"] == "/console/groups/lab?done=created"
        page = await client.get("/console/groups/lab")
        assert 'action="/console/groups/members/remove"' in page.text
        added = await _post(client, "/console/groups/members/add", token,
                            name="lab", devices="SERGRP2, " + udids[0])  # fmt: skip
        assert added.headers["location"] == "/console/groups/lab?done=added"
        assert (await server.services.storage.groups())["lab"] == udids
        removed = await _post(client, "/console/groups/members/remove", token,
                              name="lab", udid=udids[1])  # fmt: skip
        assert removed.headers["location"] == "/console/groups/lab?done=removed"
        assert (await server.services.storage.groups())["lab"] == [udids[0], udids[2]]
        gone = await _post(client, "/console/groups/delete", token, name="lab")
        assert gone.headers["location"] == "/console/groups"
    assert "lab" not in await server.services.storage.groups()
    states = {r.device_id: r.state for r in await server.services.storage.device_profiles()}
    # Installed on joining; removed from the one that left, then from all when it was deleted.
    assert states == dict.fromkeys(udids, ProfileState.REMOVING)
    assert await _group_sets(server) == [
        ("olga", ("group:lab", udids[0], udids[1]), Outcome.OK),
        ("olga", ("group:lab", *udids), Outcome.OK),
        ("olga", ("group:lab", udids[0], udids[2]), Outcome.OK),
        ("olga", ("group:lab",), Outcome.OK),
    ]


async def test_unknown_and_ambiguous_devices_change_nothing(server: Server) -> None:
    udids = await _phones(server, 2, serial="SAME")
    assert server.services.profiles is not None
    await server.services.profiles.set_group("lab", udids[:1])
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        unknown = await _post(client, "/console/groups/members/add", token,
                              name="lab", devices=f"{udids[1]} NOPE")  # fmt: skip
        shared = await _post(client, "/console/groups", token, name="new", devices="SAME")
        taken = await _post(client, "/console/groups", token, name="lab", devices=udids[1])
        long = await _post(client, "/console/groups", token, name="x" * 256, devices=udids[1])
        empty = await _post(client, "/console/groups", token, name="empty", devices=" ")
        missing = await _post(client, "/console/groups/members/add", token,
                              name="nope", devices=udids[1])  # fmt: skip
        no_page = await client.get("/console/groups/nope")
        no_token = await client.post("/console/groups/delete", data={"name": "lab"})
    assert unknown.status_code == 422
    assert "No device has the UDID or serial number NOPE." in unknown.text
    assert shared.status_code == 422
    assert "Serial number SAME belongs to 2 devices" in shared.text
    assert (taken.status_code, "exists already" in taken.text) == (409, True)
    assert (long.status_code, "at most 255 characters" in long.text) == (422, True)
    assert (empty.status_code, "at least one device" in empty.text) == (422, True)
    assert (missing.status_code, no_page.status_code) == (404, 404)
    assert (no_token.status_code, "security token" in no_token.text) == (403, True)
    assert await server.services.storage.groups() == {"lab": udids[:1]}
    outcomes = [(targets[0][:12], outcome) for _, targets, outcome in await _group_sets(server)]
    names = ["group:lab", "group:new", "group:lab", "group:xxxxxx", "group:empty", "group:nope"]
    assert outcomes == [(name, Outcome.FAILED) for name in names]
    (entry,) = await server.services.audit.entries(AuditQuery(target="group:new"))
    assert "SAME belongs to 2 devices" in (entry.reason or "")


async def test_hostile_names_are_escaped_and_linked_whole(server: Server) -> None:
    udids = await _phones(server, 1)
    await add_account(server, "olga", "operator")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        made = await _post(client, "/console/groups", token, name=HOSTILE, devices=udids[0])
        href = f"/console/groups/{quote(HOSTILE, safe='')}"
        assert made.headers["location"] == f"{href}?done=created"
        listed = await client.get("/console/groups")
        page = await client.get(href)
        removed = await _post(client, "/console/groups/members/remove", token,
                              name=HOSTILE, udid=udids[0])  # fmt: skip
    assert f'href="{href}"' in listed.text.replace("&amp;", "&")  # quoted whole, then escaped
    for text in (listed.text, page.text):
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; a/b &#34;Kim&#39;s&#34;" in text
    assert page.status_code == 200
    assert removed.headers["location"] == "/console/groups"  # its last member: gone
    assert await server.services.storage.groups() == {}


async def test_a_large_group_links_to_the_device_list(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    udids = await _phones(server, 3)
    assert server.services.profiles is not None
    await server.services.profiles.set_group("a/b", udids)
    monkeypatch.setattr(groups, "MEMBERS_SHOWN", 2)
    page = await page_as(server, "vera", "viewer", "/console/groups/a%2Fb")
    assert page.status_code == 200
    assert "Members (3)" in page.text
    assert page.text.count('href="/console/devices/UDID-GRP-') == 2
    assert 'href="/console/devices?group=a%2Fb">all 3 in the device list</a>' in page.text
