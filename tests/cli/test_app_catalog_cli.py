"""`orchardist app catalog` and `orchardist app catalog-clip`, in process: who sees an app
at /apps, its text and its icon, set, shown and refused as the API does; the catalog's Web
Clip stored in the profile library; each change in the audit log."""

from __future__ import annotations

import json
from pathlib import Path

from orchardist.apps.cgbi import normalize_png
from orchardist.apps.files import LocalFileStore
from orchardist.apps.webclip import catalog_clip_identifier
from orchardist.config import load_settings
from tests.apps.factory import build_ipa, cgbi_png
from tests.cli.test_app_cli import BUNDLE, audit_actions, run


def test_set_show_and_refuse_catalog_settings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "init", "--hostname", "mdm.example.com")
    run(data, "app", "upload", str(build_ipa(tmp_path / "app.ipa")))
    assert "in the catalog for: nobody" in run(data, "app", "catalog", BUNDLE)
    said = run(data, "app", "catalog", BUNDLE, "--group", "sales", "--group", "Field Staff",
               "--description", "Claim your expenses.")  # fmt: skip
    assert f"{BUNDLE} in the catalog for: Field Staff, sales" in said
    assert "Claim your expenses." in said
    kept = json.loads(run(data, "app", "catalog", BUNDLE, "--description", "", "--json"))
    assert kept == {"bundle_id": BUNDLE, "groups": ["Field Staff", "sales"], "description": ""}
    assert "for: everyone" in run(data, "app", "catalog", BUNDLE, "--everyone")
    assert "for: nobody" in run(data, "app", "catalog", BUNDLE, "--nobody")
    assert "no app com.example.other" in run(data, "app", "catalog", "com.example.other",
                                             "--everyone", code=1)  # fmt: skip
    both = run(data, "app", "catalog", BUNDLE, "--everyone", "--group", "sales", code=1)
    assert "not several" in both
    too_long = run(data, "app", "catalog", BUNDLE, "--description", "d" * 4001, code=1)
    assert "at most 4000 characters" in too_long
    assert "for: nobody" in run(data, "app", "catalog", BUNDLE)  # nothing changed
    catalog = [outcome for action, outcome in audit_actions(data) if action == "app.catalog"]
    assert catalog == ["ok"] * 4 + ["failed"] * 2  # changes only: showing is no change


def test_the_catalog_clip_is_stored_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "init", "--hostname", "mdm.example.com")
    identifier = catalog_clip_identifier(load_settings(data).base_url)
    assert identifier == "com.example.mdm.app-catalog"
    said = run(data, "app", "catalog-clip")
    assert f"{identifier} stored as version 1; 0 device(s) get it now" in said
    assert f"orchardist profile assign {identifier} --group directory:sales" in said
    again = json.loads(run(data, "app", "catalog-clip", "--json"))
    assert again == {"identifier": identifier, "version": 1, "installs": 0, "unchanged": True}
    listed = json.loads(run(data, "profile", "list", "--json"))
    assert [p["identifier"] for p in listed] == [identifier]


def test_replace_and_reset_the_icon(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "init", "--hostname", "mdm.example.com")
    run(data, "app", "upload", str(build_ipa(tmp_path / "app.ipa")))
    files = LocalFileStore.in_data_dir(data)
    icon = tmp_path / "icon.png"
    icon.write_bytes(cgbi_png(100, 100))  # converted, as the API converts it
    set_to = json.loads(run(data, "app", "catalog", BUNDLE, "--icon", str(icon), "--json"))
    assert set_to["bundle_id"] == BUNDLE
    assert files.path(set_to["icon_sha256"]).read_bytes() == normalize_png(icon.read_bytes())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    refused = run(data, "app", "catalog", BUNDLE, "--icon", str(tmp_path / "bad.png"), code=1)
    assert "not a PNG image" in refused
    missing = run(data, "app", "catalog", BUNDLE, "--icon", str(tmp_path / "none.png"), code=1)
    assert "cannot read" in missing
    both = run(data, "app", "catalog", BUNDLE, "--icon", str(icon), "--reset-icon", code=1)
    assert "not both" in both
    assert files.exists(set_to["icon_sha256"])  # still the admin's icon
    assert f"{BUNDLE} shows the .ipa's own icon" in run(data, "app", "catalog", BUNDLE,
                                                        "--reset-icon")  # fmt: skip
    assert not files.exists(set_to["icon_sha256"])  # no longer named: deleted
    icons = [outcome for action, outcome in audit_actions(data) if action == "app.icon"]
    assert icons == ["ok", "failed", "failed", "failed", "ok"]
