"""`orchardist provisioning upload|list|show|assign|remove`: what an upload prints (name,
UUID, app id, expiry, what the renewal does), an expired profile refused, and each change
in the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchardist.audit import AuditQuery
from orchardist.config import load_settings
from orchardist.storage.sql.repositories import open_storage
from tests.apps.factory import TEAM_ID, build_mobileprovision
from tests.cli.test_device_cli import cli
from tests.server import orchardist


def _written(path: Path, days: float, name: str) -> str:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    path.write_bytes(build_mobileprovision(expires_at=expires, name=name))
    return str(path)


async def _actions(data_dir: Path) -> list[tuple[str, str]]:
    storage = await open_storage(load_settings(data_dir).resolved_database_url)
    try:
        entries = await storage.audit_entries(AuditQuery())
    finally:
        await storage.close()
    return [(e.action, e.outcome.value) for e in reversed(entries)]


def test_upload_renew_assign_and_remove(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")

    expired = cli(data_dir, "provisioning", "upload", _written(tmp_path / "x", -2, "Gone"))
    assert expired.returncode == 1
    assert "expired 2 days ago" in expired.stderr
    assert "nothing was stored" in expired.stderr

    uploaded = cli(data_dir, "provisioning", "upload", _written(tmp_path / "a", 20.5, "Old"))
    assert uploaded.returncode == 0, uploaded.stderr
    said = uploaded.stdout
    assert "stored: Old" in said
    assert f"app id   {TEAM_ID}.com.example.expenses (team {TEAM_ID})" in said
    assert "renews nothing" in said
    assert "expires in 20 days" in uploaded.stderr  # the warning
    old = said.split("uuid", 1)[1].split()[0]

    renewal = orchardist(data_dir, "provisioning", "upload", _written(tmp_path / "b", 370, "New"))
    assert f"renews {old}: 0 device(s) get it now" in renewal

    listed = json.loads(orchardist(data_dir, "provisioning", "list", "--json"))
    by_name = {row["name"]: row for row in listed}
    new = by_name["New"]["uuid"]
    assert by_name["Old"]["replaced_by"] == new
    assert by_name["Old"]["warning"] is None  # renewed: no more warnings

    orchardist(data_dir, "provisioning", "assign", new, "--all")
    shown = json.loads(orchardist(data_dir, "provisioning", "show", new, "--json"))
    assert (shown["assignments"], shown["replaces"], shown["holders"]) == (["all"], [old], 0)

    assert f"removed {old}" in orchardist(data_dir, "provisioning", "remove", old)

    assert asyncio.run(_actions(data_dir)) == [
        ("provisioning.upload", "failed"),
        ("provisioning.upload", "ok"),
        ("provisioning.upload", "ok"),
        ("provisioning.assign", "ok"),
        ("provisioning.remove", "ok"),
    ]
