"""`orchardist app upload|list|show|assign|unassign|status|remove`, in process (the CLI
opens the data dir's services as the subprocess would), audited as the API is."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from orchardist.cli.main import app
from orchardist.config import load_settings
from orchardist.storage import DeviceFacts
from orchardist.storage.audit import AuditQuery
from orchardist.storage.sql.repositories import open_storage
from tests.apps.factory import build_ipa

BUNDLE = "com.example.expenses"


def run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result.output if code == 0 else result.stderr


def enroll_and_group(data_dir: Path, udid: str, group: str) -> None:
    """A device as enrollment leaves it, in a static group (the MDM side is tested with
    real devices in tests/apps and tests/web)."""

    async def enroll() -> None:
        storage = await open_storage(load_settings(data_dir).resolved_database_url)
        try:
            now = datetime.now(UTC)
            await storage.authenticate(DeviceFacts(udid, "com.apple.mgmt.t"), "0" * 64, now)
            await storage.token_update(udid, token=b"\x01" * 32, push_magic="M",
                                       unlock_token=None, now=now)  # fmt: skip
            await storage.set_group(group, [udid])
        finally:
            await storage.close()

    asyncio.run(enroll())


def audit_actions(data_dir: Path) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        storage = await open_storage(load_settings(data_dir).resolved_database_url)
        try:
            entries = await storage.audit_entries(AuditQuery(target=BUNDLE))
            return [(e.action, e.outcome.value) for e in reversed(entries)]
        finally:
            await storage.close()

    return asyncio.run(read())


def test_upload_assign_follow_remove(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "init", "--hostname", "mdm.example.com")
    first = build_ipa(tmp_path / "expenses.ipa")
    said = run(data, "app", "upload", str(first))
    assert said.startswith(f"uploaded {BUNDLE} 1.0 (build 1): version 1 of Expenses")
    again = run(data, "app", "upload", str(first), code=1)
    assert "--replace" in again
    assert run(data, "app", "upload", str(first), "--replace").startswith(f"replaced {BUNDLE}")
    other = build_ipa(tmp_path / "other.ipa", bundle_id="com.example.other")
    refused = run(data, "app", "upload", str(other), "--app", BUNDLE, code=1)
    assert "not a version of com.example.expenses" in refused
    assert "nothing was stored" in refused
    bad = tmp_path / "bad.ipa"
    bad.write_text("not a zip")
    assert "not a zip" in run(data, "app", "upload", str(bad), code=1)

    (listed,) = json.loads(run(data, "app", "list", "--json"))
    assert (listed["bundle_id"], listed["version"], listed["versions"]) == (BUNDLE, "1.0", 1)
    assert listed["manifest_url"].startswith(
        f"https://mdm.example.com:8443/apps/manifest/{BUNDLE}/1.plist?t="
    )
    assert listed["icon_url"] is not None

    enroll_and_group(data, "UDID-1", "sales")
    said = run(data, "app", "assign", BUNDLE, "--group", "sales")
    assert said.startswith("1 device(s) get the app through the server's roll-out")
    assert "unknown device NOPE" in run(data, "app", "assign", BUNDLE, "--device", "NOPE", code=1)
    (row,) = json.loads(run(data, "app", "status", BUNDLE, "--json"))
    assert (row["udid"], row["state"], row["desired_version_id"]) == ("UDID-1", "update_pending", 1)
    shown = run(data, "app", "show", BUNDLE)
    assert "assigned to: group:sales" in shown
    assert "devices: 1 update_pending" in shown
    # A new version: the device assigned it is to get it (the server sends it).
    newer = build_ipa(tmp_path / "2.ipa", version="1.1", build="2")
    said = run(data, "app", "upload", str(newer), "--app", BUNDLE)
    assert said.startswith(f"uploaded {BUNDLE} 1.1 (build 2): version 2")
    assert "1 device(s) get it" in said
    assert run(data, "app", "unassign", BUNDLE, "--group", "sales").startswith("0 device(s)")
    assert (
        run(data, "app", "remove", BUNDLE)
        == f"removed {BUNDLE}; 0 device(s) get RemoveApplication\n"
    )
    assert "no app" in run(data, "app", "show", BUNDLE, code=1)
    assert run(data, "app", "list") == "No apps (see `orchardist app upload`).\n"

    assert audit_actions(data) == [
        ("app.upload", "ok"), ("app.upload", "ok"), ("app.upload", "failed"),
        ("app.assign", "ok"), ("app.assign", "failed"), ("app.upload", "ok"),
        ("app.unassign", "ok"), ("app.remove", "ok"),
    ]  # fmt: skip
