"""Secrets at rest (issue 15, item 6): a dump of the database holds no profile password,
unlock token or bootstrap token; plaintext rows from before migration 0021 are sealed when
found; after a key rotation everything still opens, and only with the new key."""

from __future__ import annotations

import base64
import os
import plistlib
from pathlib import Path

import pytest
from sqlalchemy import text

from orchardist.keys.master import MasterKeyError, MasterKeys
from orchardist.keys.sources import KeySource
from orchardist.mdm import builders
from orchardist.storage import NewCommand
from orchardist.storage.sql.repositories import SqlStorage, open_storage
from orchardist.storage.sql.sealing import count_not_current, reseal, seal_plaintext
from tests.db import backends, fresh_database
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio

WIFI_PASSWORD = b"correct-horse-wifi-7Q"
UNLOCK = b"UNLOCK-TOKEN-\x00\x01secret-bytes"
BOOTSTRAP = b"BOOTSTRAP-TOKEN-secret-bytes"
UDID = "SECRET-DEVICE-1"
PROFILE = (
    b"<plist><dict><key>PayloadContent</key><array><dict><key>Password</key><string>"
    + WIFI_PASSWORD
    + b"</string></dict></array></dict></plist>"
)


def _forms(secret: bytes) -> list[bytes]:
    """The secret as a dump could show it: raw, hex (PostgreSQL's bytea) and base64 (plist
    <data>), at each of base64's three alignments."""
    forms = [secret, secret.hex().encode()]
    for skip in range(3):
        encoded = base64.b64encode(secret[skip:])
        forms.append(encoded[4 : len(encoded) - 4])
    return forms


async def _dump(storage: SqlStorage, url: str) -> bytes:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        await storage.close()
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    columns = (
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'bytea', 'character varying', 'json', 'jsonb')"
    )

    def work(conn: object) -> bytes:
        found = b""
        for table, column in conn.execute(text(columns)).all():  # type: ignore[attr-defined]
            rows = conn.execute(text(f'SELECT "{column}"::text FROM "{table}"'))  # type: ignore[attr-defined]  # noqa: S608
            found += b"\n".join(str(v).encode() for (v,) in rows if v is not None)
        return found

    return await storage.database.read(work)  # type: ignore[arg-type]


async def _fill(storage: SqlStorage) -> None:
    await storage.add_profile_version(
        "com.example.wifi", "Wi-Fi", ["com.apple.wifi.managed"], PROFILE, NOW
    )
    await add_device(storage, Spec(UDID))
    await storage.token_update(
        UDID, token=b"\x02" * 32, push_magic="M", unlock_token=UNLOCK, now=NOW
    )
    await storage.set_bootstrap_token(UDID, BOOTSTRAP)
    request_type, params = builders.clear_passcode(UNLOCK)
    body = plistlib.dumps(
        {"CommandUUID": "C-1", "Command": {"RequestType": request_type, **params}}
    )
    await storage.enqueue(NewCommand("C-1", request_type, body), [UDID], NOW)


async def _reads_back(storage: SqlStorage) -> None:
    enrollment = await storage.get_enrollment(UDID)
    assert enrollment is not None
    assert (enrollment.unlock_token, enrollment.bootstrap_token) == (UNLOCK, BOOTSTRAP)
    version = await storage.profile_version("com.example.wifi")
    assert version is not None
    assert version.body == PROFILE
    sent = (await storage.exchange(UDID, None, NOW)).next_command
    assert sent is not None
    assert plistlib.loads(sent[1])["Command"]["UnlockToken"] == UNLOCK


def _assert_no_secret(dump: bytes) -> None:
    for secret in (WIFI_PASSWORD, UNLOCK, BOOTSTRAP):
        for form in _forms(secret):
            assert form not in dump, secret


@pytest.mark.parametrize("backend", backends())
async def test_a_dump_holds_no_secret_and_rotation_keeps_everything(
    backend: str, tmp_path: Path
) -> None:
    source = KeySource(tmp_path / "master.key")
    old = source.load(create=True)
    assert os.stat(source.file).st_mode & 0o777 == 0o600
    async with fresh_database(backend, tmp_path) as url:
        storage = await open_storage(url, old)
        await _fill(storage)
        _assert_no_secret(await _dump(storage, url))
        await storage.close()

        both = MasterKeys((MasterKeys.generate().keys[0], *old.keys))
        storage = await open_storage(url, both)
        assert await count_not_current(storage.database, both) == 4
        assert await reseal(storage.database, both) == 4
        assert await reseal(storage.database, both) == 0  # a re-run has nothing left
        await storage.close()

        new = MasterKeys(both.keys[:1])
        storage = await open_storage(url, new)
        await _reads_back(storage)
        _assert_no_secret(await _dump(storage, url))
        await storage.close()
        stale = await open_storage(url, old)
        with pytest.raises(MasterKeyError, match=new.current_id):
            await stale.get_enrollment(UDID)
        await stale.close()


@pytest.mark.parametrize("backend", backends())
async def test_plaintext_rows_from_before_sealing_are_read_then_sealed(
    backend: str, tmp_path: Path
) -> None:
    keys = MasterKeys.generate()
    async with fresh_database(backend, tmp_path) as url:
        storage = await open_storage(url, keys)
        await _fill(storage)
        clear = {"unlock_token": UNLOCK, "bootstrap_token": BOOTSTRAP}
        await storage.database.write(  # as a server before migration 0021 left them
            lambda conn: (
                conn.execute(
                    text(
                        "UPDATE enrollments SET unlock_token = :unlock_token,"
                        " unlock_token_key = NULL, bootstrap_token = :bootstrap_token,"
                        " bootstrap_token_key = NULL"
                    ),
                    clear,
                ),
                conn.execute(
                    text("UPDATE profile_versions SET body = :body, body_key = NULL"),
                    {"body": PROFILE},
                ),
            )
        )
        enrollment = await storage.get_enrollment(UDID)
        assert enrollment is not None
        assert enrollment.unlock_token == UNLOCK
        assert await seal_plaintext(storage.database, keys) == 3
        await _reads_back(storage)
        _assert_no_secret(await _dump(storage, url))
        await storage.close()
