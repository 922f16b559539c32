"""A database from before secrets at rest (migration 0021), holding its secrets in the
clear, brought to the current schema and started: `serve`'s seal_on_start leaves no
plaintext secret in the database, and everything reads back through the stores, on SQLite
and PostgreSQL."""

from __future__ import annotations

import plistlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from orchardist.cli.serve import seal_on_start
from orchardist.config import load_settings
from orchardist.keys.master import MasterKeys
from orchardist.mdm import builders
from orchardist.pki.store import PkiFiles
from orchardist.storage import TargetStatus
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from orchardist.storage.sql.tables import (
    command_targets,
    commands,
    enrollments,
    profile_versions,
    profiles,
)
from tests.db import backends, fresh_database
from tests.storage.devices import NOW
from tests.storage.test_secrets_at_rest import (
    BOOTSTRAP,
    PROFILE,
    UDID,
    UNLOCK,
    _assert_no_secret,
    _dump,
)

pytestmark = pytest.mark.anyio

IDENTIFIER = "com.example.wifi"
BEFORE_SEALING = "0020"  # the last revision without key id columns


def _bodies() -> dict[str, tuple[str, bytes]]:
    """CommandUUID -> (RequestType, body): two that carry a secret, one that does not."""
    built = {
        "C-CLEAR": builders.clear_passcode(UNLOCK),
        "C-PROFILE": builders.install_profile(PROFILE),
        "C-INFO": ("DeviceInformation", {"Queries": ["DeviceName"]}),
    }
    return {
        uuid: (
            kind,
            plistlib.dumps({"CommandUUID": uuid, "Command": {"RequestType": kind, **params}}),
        )
        for uuid, (kind, params) in built.items()
    }


def _old_rows(conn: Connection) -> None:
    """The rows as a server before 0021 wrote them: the secrets as they are, no key ids
    (the columns do not exist yet at this revision)."""
    conn.execute(insert(enrollments).values(
        device_id=UDID, topic="com.apple.mgmt.test", identity_sha256="a" * 64, enrolled=True,
        token=b"\x02" * 32, push_magic="M", unlock_token=UNLOCK, bootstrap_token=BOOTSTRAP,
        authenticated_at=NOW - timedelta(days=1), enrolled_at=NOW - timedelta(days=1),
    ))  # fmt: skip
    conn.execute(insert(profiles).values(
        identifier=IDENTIFIER, display_name="Wi-Fi", latest_version=1, created_at=NOW,
        updated_at=NOW,
    ))  # fmt: skip
    conn.execute(insert(profile_versions).values(
        identifier=IDENTIFIER, version=1, display_name="Wi-Fi",
        payload_types=["com.apple.wifi.managed"], body=PROFILE, created_at=NOW,
    ))  # fmt: skip
    for n, (uuid, (kind, body)) in enumerate(_bodies().items()):
        at = NOW + timedelta(seconds=n)  # sent in this order
        conn.execute(insert(commands).values(
            command_uuid=uuid, request_type=kind, body=body, priority=0, created_at=at,
        ))  # fmt: skip
        conn.execute(insert(command_targets).values(
            command_uuid=uuid, device_id=UDID, status=TargetStatus.QUEUED.value, priority=0,
            created_at=at,
        ))  # fmt: skip


def _key_ids(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(commands.c.command_uuid, commands.c.body_key)).all()
    return {str(uuid): key for uuid, key in rows}


async def _sent(storage: SqlStorage) -> dict[str, bytes]:
    """Every queued command as the device receives it, acknowledging each."""
    sent: dict[str, bytes] = {}
    reply = (await storage.exchange(UDID, None, NOW)).next_command
    while reply is not None:
        uuid, body = reply
        sent[uuid] = body
        report = (uuid, TargetStatus.ACKNOWLEDGED, plistlib.dumps({"Status": "Acknowledged"}))
        reply = (await storage.exchange(UDID, report, NOW)).next_command
    return sent


@pytest.mark.parametrize("backend", backends())
async def test_a_start_seals_the_secrets_a_database_from_before_sealing_held(
    backend: str, tmp_path: Path
) -> None:
    keys = MasterKeys.generate()
    async with fresh_database(backend, tmp_path, migrate=False) as url:
        await upgrade(url, BEFORE_SEALING)
        old = await open_storage(url, keys)
        await old.database.write(_old_rows)
        await old.close()
        await upgrade(url)  # the new release's `serve` migrates, then seals
        settings = load_settings(tmp_path / "data", database_url=url)
        await seal_on_start(settings, PkiFiles.in_data_dir(settings.data_dir, keys))

        storage = await open_storage(url, keys)
        sealed_by = await storage.database.read(_key_ids)
        # Only the bodies that carry a secret are sealed; a plain query is left as it is.
        assert sealed_by == {"C-CLEAR": keys.current_id, "C-PROFILE": keys.current_id,
                             "C-INFO": None}  # fmt: skip
        enrollment = await storage.get_enrollment(UDID)
        assert enrollment is not None
        assert (enrollment.unlock_token, enrollment.bootstrap_token) == (UNLOCK, BOOTSTRAP)
        version = await storage.profile_version(IDENTIFIER)
        assert version is not None
        assert version.body == PROFILE
        assert await _sent(storage) == {uuid: body for uuid, (_, body) in _bodies().items()}
        # The profile's Wi-Fi password, the unlock and bootstrap tokens: in no form.
        _assert_no_secret(await _dump(storage, url))
        await storage.close()
