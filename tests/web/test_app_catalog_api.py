"""/api/v1/apps/{bundle_id}/catalog and /api/v1/apps/catalog-clip: an admin sets who sees
an app at /apps and its text (recorded, refused for unknown apps and bad input with
nothing changed); the catalog's Web Clip is stored in the profile library and assigned
like any profile, reaching enrolled devices."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from orchardist.apps.webclip import catalog_clip_identifier
from orchardist.profiles.validate import check_profile
from orchardist.storage.audit import AuditQuery
from orchardist.tokens import create_api_token
from tests.web.mdm_server import Server
from tests.web.stored_apps import store_app

pytestmark = pytest.mark.anyio
CATALOG = "/api/v1/apps/com.example.expenses/catalog"


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
