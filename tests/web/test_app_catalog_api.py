"""/api/v1/apps/{bundle_id}/catalog, /api/v1/apps/{bundle_id}/icon and
/api/v1/apps/catalog-clip: an admin sets who sees an app at /apps and its text, and
replaces its icon or goes back to the .ipa's (recorded, refused for unknown apps and bad
input with nothing changed); the catalog's Web Clip is stored in the profile library and
assigned like any profile, reaching enrolled devices."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from orchardist.apps.cgbi import is_cgbi, normalize_png, png_size
from orchardist.apps.files import LocalFileStore
from orchardist.apps.webclip import catalog_clip_identifier
from orchardist.profiles.validate import check_profile
from orchardist.storage.audit import AuditQuery
from orchardist.tokens import create_api_token
from tests.apps.factory import cgbi_png
from tests.web.mdm_server import Server
from tests.web.stored_apps import store_app

pytestmark = pytest.mark.anyio
CATALOG = "/api/v1/apps/com.example.expenses/catalog"
ICON = "/api/v1/apps/com.example.expenses/icon"
PNG = {"Content-Type": "image/png"}


async def _token(server: Server, role: str = "admin") -> dict[str, str]:
    token = await create_api_token(server.services.storage, f"test-{role}", role)
    return {"Authorization": f"Bearer {token}"}


async def test_an_admin_sets_who_sees_the_app(server: Server, tmp_path: Path) -> None:
    await store_app(server.services, tmp_path)
    admin = await _token(server)
    body = {"groups": ["sales", " Field Staff "], "description": "Claim <b>expenses</b>."}
    answer = await server.http.put(CATALOG, json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "bundle_id": "com.example.expenses",
        "groups": ["Field Staff", "sales"],
        "description": "Claim <b>expenses</b>.",
    }
    storage = server.services.storage
    assert [e.app.bundle_id for e in await storage.entitled_apps(["sales"])] == [
        "com.example.expenses"
    ]
    # Only the description: the groups stay.
    again = await server.http.put(CATALOG, json={"description": ""}, headers=admin)
    assert again.json()["groups"] == ["Field Staff", "sales"]
    assert again.json()["description"] == ""
    everyone = await server.http.put(CATALOG, json={"groups": ["*"]}, headers=admin)
    assert everyone.json()["groups"] == ["*"]
    (entry, *_) = await storage.audit_entries(AuditQuery(action="app.catalog"))
    assert (entry.outcome.value, list(entry.targets)) == ("ok", ["com.example.expenses"])
    assert entry.detail["groups"] == ["*"]


async def test_refusals_change_nothing(server: Server, tmp_path: Path) -> None:
    await store_app(server.services, tmp_path, groups=["sales"], description="Before")
    admin, operator = await _token(server), await _token(server, "operator")
    unknown = await server.http.put(
        "/api/v1/apps/com.example.nothing/catalog", json={"groups": ["sales"]}, headers=admin
    )
    assert unknown.status_code == 404
    assert "upload it first" in unknown.json()["detail"]
    for bad in ({"groups": [""]}, {"groups": ["x" * 256]}, {"groups": ["g"] * 101},
                {"description": "d" * 4001}, {"groups": "sales"}):  # fmt: skip
        refused = await server.http.put(CATALOG, json=bad, headers=admin)
        assert refused.status_code == 422, bad
    denied = await server.http.put(CATALOG, json={"groups": ["*"]}, headers=operator)
    assert denied.status_code == 403
    app = await server.services.storage.get_app("com.example.expenses")
    assert app is not None
    assert (app.catalog_groups, app.description) == (("sales",), "Before")


async def test_the_catalog_clip_is_a_profile_like_any(server: Server) -> None:
    admin = await _token(server)
    device = await server.device("UDID-CLIP", 170)
    await server.enroll(device)
    stored = await server.http.post("/api/v1/apps/catalog-clip", headers=admin)
    assert stored.status_code == 201, stored.text
    identifier = catalog_clip_identifier(server.services.settings.base_url)
    assert stored.json() == {
        "identifier": identifier, "version": 1, "installs": 0, "unchanged": False
    }  # fmt: skip
    again = await server.http.post("/api/v1/apps/catalog-clip", headers=admin)
    assert (again.status_code, again.json()["unchanged"]) == (200, True)
    version = await server.services.storage.profile_version(identifier)
    assert version is not None
    profile = plistlib.loads(version.body)
    assert check_profile(profile).ok
    (clip,) = profile["PayloadContent"]
    assert clip["URL"] == f"{server.services.settings.base_url}/apps"
    assert clip["Label"] == "App Catalog"
    assigned = await server.http.post(
        f"/api/v1/profiles/{identifier}/assignments", json={"all": True}, headers=admin
    )
    assert assigned.json()["installs"] == 1  # the enrolled device gets it
    (entry, *_) = await server.services.storage.audit_entries(
        AuditQuery(action="profile.upload", target=identifier)
    )
    assert entry.outcome.value == "ok"
    viewer = await _token(server, "viewer")
    denied = await server.http.post("/api/v1/apps/catalog-clip", headers=viewer)
    assert denied.status_code == 403


async def _shown_icon(server: Server, headers: dict[str, str]) -> bytes:
    """The PNG behind the icon_url GET /api/v1/apps gives for the app."""
    (app,) = (await server.http.get("/api/v1/apps", headers=headers)).json()
    base = server.services.settings.base_url
    fetched = await server.http.get(app["icon_url"].removeprefix(base))
    assert (fetched.status_code, fetched.headers["content-type"]) == (200, "image/png")
    return fetched.content


async def test_an_admin_replaces_the_icon_and_goes_back(server: Server, tmp_path: Path) -> None:
    version = await store_app(server.services, tmp_path)
    admin, viewer = await _token(server), await _token(server, "viewer")
    from_ipa = await _shown_icon(server, viewer)
    assert png_size(from_ipa) == (180, 180)  # the .ipa's largest
    replacement = normalize_png(cgbi_png(64, 80))  # a standard PNG; not square is fine
    put = await server.http.put(ICON, content=replacement, headers={**admin, **PNG})
    assert put.status_code == 200, put.text
    assert put.json()["icon_sha256"] not in (None, version.icon_sha256)
    assert await _shown_icon(server, viewer) == replacement
    # An Apple CgBI PNG is converted; the replacement before it is no longer kept.
    files = server.services.files
    assert isinstance(files, LocalFileStore)
    first = put.json()["icon_sha256"]
    cgbi = cgbi_png(120, 120)
    converted = await server.http.put(ICON, content=cgbi, headers={**admin, **PNG})
    assert converted.status_code == 200, converted.text
    shown = await _shown_icon(server, viewer)
    assert not is_cgbi(shown)
    assert (shown, png_size(shown)) == (normalize_png(cgbi), (120, 120))
    assert not files.exists(first)
    reset = await server.http.delete(ICON, headers=admin)
    assert reset.json() == {"bundle_id": "com.example.expenses", "icon_sha256": None}
    assert await _shown_icon(server, viewer) == from_ipa
    assert not files.exists(converted.json()["icon_sha256"])
    assert version.icon_sha256 is not None
    assert files.exists(version.icon_sha256)
    entries = await server.services.storage.audit_entries(AuditQuery(action="app.icon"))
    assert [(e.outcome.value, list(e.targets)) for e in entries] == [
        ("ok", ["com.example.expenses"])
    ] * 3
    assert entries[0].detail["icon_sha256"] is None  # newest first: the reset


async def test_bad_icons_are_refused_and_change_nothing(server: Server, tmp_path: Path) -> None:
    await store_app(server.services, tmp_path)
    admin = await _token(server)
    kept = normalize_png(cgbi_png(96, 96))
    assert (await server.http.put(ICON, content=kept, headers={**admin, **PNG})).status_code == 200
    before = await server.services.storage.get_app("com.example.expenses")
    for bad, said in (
        (b"GIF89a not a png", "not a PNG image"),
        (b"", "not a PNG image"),
        (normalize_png(cgbi_png(40, 40)), "40 x 40 pixels"),
        (cgbi_png(57, 1025)[:64], "57 x 1025 pixels"),  # the header is enough to say
        (cgbi_png(64, 64)[:-30], "cut off"),  # inside its image data
    ):
        refused = await server.http.put(ICON, content=bad, headers={**admin, **PNG})
        assert refused.status_code == 422, (said, refused.text)
        assert said in refused.json()["detail"], refused.text
    too_big = await server.http.put(ICON, content=kept + b"\0" * (4 << 20), headers=admin)
    assert too_big.status_code == 413
    for role in ("viewer", "operator"):
        headers = await _token(server, role)
        assert (await server.http.put(ICON, content=kept, headers=headers)).status_code == 403
        assert (await server.http.delete(ICON, headers=headers)).status_code == 403
    unknown = "/api/v1/apps/com.example.nothing/icon"
    assert (await server.http.put(unknown, content=kept, headers=admin)).status_code == 404
    assert (await server.http.delete(unknown, headers=admin)).status_code == 404
    assert await server.services.storage.get_app("com.example.expenses") == before
