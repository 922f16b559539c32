"""/api/v1/apps: a streamed upload (multipart or the bare file), list with signed links,
show, assign to a group and follow the roll-out, status, unassign, remove; bad uploads
refused with nothing stored, a cut-off upload too, and the same file twice at once."""

from __future__ import annotations

import asyncio
import plistlib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchardist.apps.files import LocalFileStore
from orchardist.storage.audit import AuditQuery
from orchardist.tokens import create_api_token
from orchardist.web.app import create_app
from tests.apps.factory import build_ipa
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
BUNDLE = "com.example.expenses"


async def token(server: Server, role: str = "admin", name: str = "") -> dict[str, str]:
    made = await create_api_token(server.services.storage, name or f"test-{role}", role)
    return {"Authorization": f"Bearer {made}"}


def file_store(server: Server) -> LocalFileStore:
    files = server.services.files
    assert isinstance(files, LocalFileStore)
    return files


def stored(server: Server) -> list[Path]:
    """Every file in the store, finished or not."""
    return sorted(p for p in file_store(server).root.rglob("*") if p.is_file())


async def post_ipa(
    server: Server, path: Path, headers: dict[str, str], url: str = "/api/v1/apps", **data: str
) -> Any:
    with path.open("rb") as handle:
        files = {"file": (path.name, handle, "application/octet-stream")}
        return await server.http.post(url, files=files, data=data, headers=headers)


async def test_upload_list_assign_follow_remove(server: Server, tmp_path: Path) -> None:
    admin, viewer = await token(server), await token(server, "viewer")
    operator = await token(server, "operator")
    ipa = build_ipa(tmp_path / "expenses.ipa")
    assert (await post_ipa(server, ipa, viewer)).status_code == 403
    assert (await post_ipa(server, ipa, operator)).status_code == 403
    created = await post_ipa(server, ipa, admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["bundle_id"], body["version"], body["build"], body["version_id"]) == (
        BUNDLE, "1.0", "1", 1,
    )  # fmt: skip
    assert (body["replaced"], body["updating"], body["warnings"]) == (False, 0, [])

    (app,) = (await server.http.get("/api/v1/apps", headers=viewer)).json()
    base = server.services.settings.base_url
    assert (app["bundle_id"], app["version"], app["versions"]) == (BUNDLE, "1.0", 1)
    assert app["manifest_url"].startswith(f"{base}/apps/manifest/{BUNDLE}/1.plist?t=")
    assert app["icon_url"].startswith(f"{base}/apps/icons/")
    assert app["install_link"].startswith("itms-services://?action=download-manifest&url=")
    # The links work: the manifest names this version, the icon is a PNG.
    manifest = await server.http.get(app["manifest_url"].removeprefix(base))
    assert manifest.status_code == 200, manifest.text
    metadata = plistlib.loads(manifest.content)["items"][0]["metadata"]
    assert (metadata["bundle-identifier"], metadata["bundle-version"]) == (BUNDLE, "1.0")
    icon = await server.http.get(app["icon_url"].removeprefix(base))
    assert icon.content.startswith(b"\x89PNG")

    devices = [await server.device(f"UDID-{n}", 160 + n) for n in range(2)]
    for device in devices:
        await server.enroll(device)
    await server.http.put("/api/v1/groups/sales", json={"devices": ["UDID-1"]}, headers=admin)
    url = f"/api/v1/apps/{BUNDLE}/assignments"
    assert (
        await server.http.post(url, json={"groups": ["sales"]}, headers=viewer)
    ).status_code == 403
    assigned = await server.http.post(url, json={"groups": ["sales"]}, headers=operator)
    assert assigned.json() == {"installs": 1, "removals": 0}
    unknown = await server.http.post(url, json={"devices": ["NOPE"]}, headers=operator)
    assert (unknown.status_code, unknown.json()["detail"]) == (422, "unknown device NOPE")
    assert server.services.apps is not None
    assert await server.services.apps.roll_out() == 1
    sent = plistlib.loads((await server.report(devices[1], "Idle")).content)
    await server.report(devices[1], "Acknowledged", CommandUUID=sent["CommandUUID"],
                        State="Managed")  # fmt: skip
    shown = (await server.http.get(f"/api/v1/apps/{BUNDLE}", headers=viewer)).json()
    assert shown["assignments"] == {"device": [], "group": ["sales"], "all": []}
    assert shown["states"] == {"managed": 1}
    assert [v["version_id"] for v in shown["history"]] == [1]
    (state,) = (await server.http.get(f"/api/v1/apps/{BUNDLE}/status", headers=viewer)).json()
    assert (state["udid"], state["state"], state["installed_version_id"]) == (
        "UDID-1",
        "managed",
        1,
    )

    # A new version: the device that has it is updating.
    newer = build_ipa(tmp_path / "2.ipa", version="1.1", build="2")
    done = await post_ipa(server, newer, admin, f"/api/v1/apps/{BUNDLE}/versions")
    assert (done.status_code, done.json()["updating"]) == (201, 1)
    unassigned = await server.http.request("DELETE", url, json={"groups": ["sales"]},
                                           headers=operator)  # fmt: skip
    assert unassigned.json() == {"installs": 0, "removals": 1}
    assert (await server.http.delete(f"/api/v1/apps/{BUNDLE}", headers=operator)).status_code == 403
    removed = await server.http.delete(f"/api/v1/apps/{BUNDLE}", headers=admin)
    assert removed.status_code == 200
    assert (await server.http.get(f"/api/v1/apps/{BUNDLE}", headers=viewer)).status_code == 404
    assert stored(server) == []

    entries = await server.services.storage.audit_entries(AuditQuery(target=BUNDLE))
    actions = [(e.action, e.outcome.value) for e in reversed(entries)]
    assert actions == [
        ("app.upload", "ok"), ("app.assign", "denied"), ("app.assign", "ok"),
        ("app.assign", "failed"), ("app.upload", "ok"), ("app.unassign", "ok"),
        ("app.remove", "denied"), ("app.remove", "ok"),
    ]  # fmt: skip
    denied = await server.services.storage.audit_entries(AuditQuery(action="app.upload"))
    assert [e.outcome.value for e in reversed(denied)] == ["denied", "denied", "ok", "ok"]


async def test_bad_uploads_store_nothing(server: Server, tmp_path: Path) -> None:
    admin = await token(server)
    ipa = build_ipa(tmp_path / "expenses.ipa")
    not_zip = tmp_path / "notes.ipa"
    not_zip.write_text("not a zip")
    refused = await post_ipa(server, not_zip, admin)
    assert refused.status_code == 422
    assert "not a zip" in refused.json()["detail"]["problems"][0]
    plain = await server.http.post("/api/v1/apps", content=b"PK", headers={
        **admin, "Content-Type": "text/plain"})  # fmt: skip
    assert plain.status_code == 415
    no_file = await server.http.post("/api/v1/apps", data={"replace": "true"}, files={
        "other": ("x.txt", b"x")}, headers=admin)  # fmt: skip
    assert no_file.status_code == 422
    assert "unexpected file `other`" in no_file.json()["detail"]
    other = build_ipa(tmp_path / "other.ipa", bundle_id="com.example.other")
    versions = f"/api/v1/apps/{BUNDLE}/versions"
    assert (await post_ipa(server, other, admin, versions)).status_code == 404  # no such app
    assert server.services.apps is not None
    server.services.apps.max_upload_bytes = 1024
    too_big = await post_ipa(server, ipa, admin)
    assert too_big.status_code == 413
    assert "max_upload_mb" in too_big.json()["detail"]
    assert stored(server) == []
    assert await server.services.storage.list_apps() == []

    # The bare file works too; the same version again is 409 unless replaced (a form field
    # or the query).
    server.services.apps.max_upload_bytes = 64 * 1024 * 1024
    bare = await server.http.post("/api/v1/apps", content=ipa.read_bytes(), headers={
        **admin, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert bare.status_code == 201, bare.text
    mismatch = await post_ipa(server, other, admin, versions)
    assert mismatch.status_code == 422
    assert "not a version of com.example.expenses" in mismatch.json()["detail"]["problems"][0]
    assert await server.services.storage.get_app("com.example.other") is None
    again = await post_ipa(server, ipa, admin)
    assert again.status_code == 409
    assert "replace" in again.json()["detail"]
    assert (await post_ipa(server, ipa, admin, replace="true")).status_code == 200
    query = await post_ipa(server, ipa, admin, "/api/v1/apps?replace=true")
    assert (query.status_code, query.json()["replaced"]) == (200, True)


async def test_the_same_file_twice_at_once(server: Server, tmp_path: Path) -> None:
    admin = await token(server)
    ipa = build_ipa(tmp_path / "expenses.ipa")
    answers = await asyncio.gather(post_ipa(server, ipa, admin), post_ipa(server, ipa, admin))
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert len(await server.services.storage.app_versions(BUNDLE)) == 1


# -- raw ASGI: a body that arrives in pieces, ends early, or whose client goes away

Receive = Callable[[], Awaitable[dict[str, Any]]]


def multipart(data: bytes, boundary: str = "XyZ") -> tuple[bytes, bytes, str]:
    """(head, tail, Content-Type) of a form whose `file` is `data`."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="a.ipa"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def raw_post(server: Server, receive: Receive, content_type: str) -> tuple[int, bytes]:
    """POST /api/v1/apps straight through the ASGI app, the body from `receive`."""
    app = create_app(server.services.settings, server.services)
    bearer = (await token(server, name=f"raw-{uuid.uuid4().hex[:8]}"))["Authorization"]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": "/api/v1/apps", "raw_path": b"/api/v1/apps",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("mdm.test", 443),
        "headers": [(b"host", b"mdm.test"), (b"content-type", content_type.encode()),
                    (b"authorization", bearer.encode())],
    }  # fmt: skip
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


def pieces(*parts: bytes, then: dict[str, Any] | None = None) -> Receive:
    messages = [{"type": "http.request", "body": part, "more_body": True} for part in parts]
    messages.append(then or {"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # nothing more ever comes
        return {}

    return receive


async def test_a_cut_off_upload_stores_nothing(server: Server, tmp_path: Path) -> None:
    data = build_ipa(tmp_path / "expenses.ipa", size_padding=2 * 1024 * 1024).read_bytes()
    head, tail, content_type = multipart(data)
    half = data[: len(data) // 2]
    # The body ends before the form does (a proxy gave up, Content-Length lied).
    status, body = await raw_post(server, pieces(head, half), content_type)
    assert (status, b"cut off" in body) == (400, True)
    # The client goes away midway.
    gone = pieces(head, half, then={"type": "http.disconnect"})
    status, body = await raw_post(server, gone, content_type)
    assert (status, b"cut off" in body) == (400, True)
    assert stored(server) == []
    assert await server.services.storage.list_apps() == []
    # Whole, it is taken.
    status, body = await raw_post(server, pieces(head, data, tail), content_type)
    assert status == 201, body


async def test_the_upload_reaches_the_disk_as_it_arrives(server: Server, tmp_path: Path) -> None:
    """The server writes the file while the client is still sending it: it never holds
    the whole .ipa in memory."""
    data = build_ipa(tmp_path / "big.ipa", size_padding=4 * 1024 * 1024).read_bytes()
    head, tail, content_type = multipart(data)
    incoming = file_store(server).incoming
    sent = [head, *(data[i : i + 65536] for i in range(0, 3 * 1024 * 1024, 65536))]
    rest = data[3 * 1024 * 1024 :] + tail
    seen: list[int] = []

    async def receive() -> dict[str, Any]:
        if sent:
            return {"type": "http.request", "body": sent.pop(0), "more_body": True}
        if not seen:  # before the rest: what is on disk of this upload already?
            for _ in range(200):
                written = sum(p.stat().st_size for p in incoming.glob("*.part"))
                if written >= 2 * 1024 * 1024:
                    break
                await asyncio.sleep(0.05)
            seen.append(written)
            return {"type": "http.request", "body": rest, "more_body": False}
        await asyncio.Event().wait()
        return {}

    status, body = await raw_post(server, receive, content_type)
    assert status == 201, body
    assert seen[0] >= 2 * 1024 * 1024
