"""`orchardist backup` while `serve` runs and `orchardist restore` into a new folder: the
same virtual devices keep checking in against the restored server and receive a command
queued after the restore (their identities still verify against the restored CA). On
PostgreSQL the archive holds the keys and config and names the pg_dump step, and the
restored folder points at the same database. And the refusals: a folder that is not
empty, a damaged archive, keys that do not match; nothing half-written in each case."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orchardist.cli.backup import pg_dump_command
from orchardist.config import write_config
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.fleet import retarget
from orchardist.simulator.profile import EnrollmentPlan, read_profile
from tests.db import backends, fresh_database
from tests.keys import rsa_key
from tests.server import ORCHARDIST, orchardist, running_server

pytestmark = pytest.mark.anyio
STATIC = "backup-static-challenge"
ENV = {"ORCHARDIST_SCEP_STATIC_CHALLENGE": STATIC}
DEVICES = 3
QUERY = {"request_type": "DeviceInformation", "params": {"Queries": ["SerialNumber"]}}


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.asynccontextmanager
async def _database(backend: str, tmp_path: Path) -> AsyncIterator[str | None]:
    """None on SQLite (the data folder's own file); a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        yield None
        return
    async with fresh_database(backend, tmp_path, migrate=False) as url:
        yield url


def _init(data_dir: Path, database_url: str | None, tmp_path: Path) -> tuple[str, EnrollmentPlan]:
    """A data folder (its database_url in its config); the admin token and device plan."""
    data_dir.mkdir(mode=0o700)
    if database_url:
        write_config(data_dir, {"database_url": database_url})
    admin = json.loads(orchardist(data_dir, "init", "--hostname", "localhost", "--json"))
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--static", "-o", str(profile), env=ENV)
    return admin["admin_token"], read_profile(profile.read_bytes())


async def _queue(base: str, token: str) -> str:
    async with httpx.AsyncClient() as api:
        queued = await api.post(
            f"{base}/api/v1/commands",
            json={**QUERY, "targets": {"all": True}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert queued.status_code == 201, queued.text
    assert queued.json()["targets"] == DEVICES
    command_uuid: str = queued.json()["command_uuid"]
    return command_uuid


async def _statuses(base: str, token: str, command_uuid: str) -> list[str]:
    async with httpx.AsyncClient() as api:
        detail = await api.get(
            f"{base}/api/v1/commands/{command_uuid}",
            headers={"Authorization": f"Bearer {token}"},
        )
    return [t["status"] for t in detail.json()["targets"]]


async def _checking_in(devices: list[VirtualDevice], stop: asyncio.Event) -> int:
    """Sessions by every device, round after round, until `stop`; how many there were."""
    rounds = 0
    while not stop.is_set():
        await asyncio.gather(*(device.session() for device in devices))
        rounds += 1
    return rounds


@pytest.mark.parametrize("backend", backends())
async def test_restored_server_keeps_the_same_devices(backend: str, tmp_path: Path) -> None:
    old, new, archive = tmp_path / "old", tmp_path / "new", tmp_path / "backup.tar.gz"
    async with _database(backend, tmp_path) as database_url, httpx.AsyncClient() as http:
        token, plan = _init(old, database_url, tmp_path)
        devices = [VirtualDevice(plan, i, rsa_key(i), http) for i in range(DEVICES)]
        with running_server(old, http=True, env=ENV) as base:
            for device in devices:
                device.plan = retarget(plan, base)
                await device.enroll()
            before = await _queue(base, token)
            # Every device answers it before the backup starts (a slow machine's backup
            # otherwise copied the database during the first round); sessions go on
            # meanwhile, round after round.
            await asyncio.gather(*(device.session() for device in devices))
            stop = asyncio.Event()
            sessions = asyncio.create_task(_checking_in(devices, stop))
            backed_up = await asyncio.to_thread(_run, old, "backup", str(archive))
            stop.set()
            assert await sessions >= 1
        assert backed_up.returncode == 0, backed_up.stderr
        assert archive.stat().st_mode & 0o777 == 0o600
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        assert {"manifest.json", "orchardist.toml", "pki/ca.key", "pki/ca.pem"} <= set(names)
        assert "secrets/links.key" in names  # the app links' signing key, made at start
        if backend == "sqlite":
            assert "orchardist.db" in names
        else:
            assert "orchardist.db" not in names
            assert "pg_dump --format=custom" in backed_up.stdout
            assert (database_url or "").split("@")[-1] in backed_up.stdout

        restored = _run(new, "restore", str(archive))
        assert restored.returncode == 0, restored.stderr
        assert "CA key matches the CA certificate" in restored.stdout
        assert f"orchardist --data-dir {new} serve" in restored.stdout
        with running_server(new, http=True, env=ENV) as base:
            # The command queued before the backup is remembered (SQLite: in the copy).
            assert await _statuses(base, token, before) == ["acknowledged"] * DEVICES
            after = await _queue(base, token)
            for device in devices:
                device.plan = retarget(plan, base)
                stats = await device.session()
                assert stats.commands == 1, device.udid
            assert await _statuses(base, token, after) == ["acknowledged"] * DEVICES


def _backed_up(tmp_path: Path) -> Path:
    data_dir, archive = tmp_path / "data", tmp_path / "backup.tar.gz"
    orchardist(data_dir, "init", "--hostname", "localhost")
    orchardist(data_dir, "backup", str(archive))
    return archive


def _untouched(tmp_path: Path, target: Path) -> None:
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def test_restore_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    archive = _backed_up(tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    refused = _run(target, "restore", str(archive))
    assert refused.returncode == 1
    assert "is not an empty folder" in refused.stderr
    assert "--force" in refused.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    forced = _run(target, "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stderr
    assert (target / "pki" / "ca.key").exists()


def test_restore_refuses_a_cut_short_archive(tmp_path: Path) -> None:
    archive = _backed_up(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused = _run(tmp_path / "new", "restore", str(cut))
    assert refused.returncode == 1
    assert "is not a readable backup" in refused.stderr
    _untouched(tmp_path, tmp_path / "new")


def test_restore_refuses_an_altered_file(tmp_path: Path) -> None:
    archive = _backed_up(tmp_path)
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    files["pki/ca.pem"] = files["pki/ca.pem"].replace(b"A", b"B", 1)
    altered = tmp_path / "altered.tar.gz"
    with gzip.open(altered, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    refused = _run(tmp_path / "new", "restore", str(altered))
    assert refused.returncode == 1
    assert "pki/ca.pem does not match its checksum" in refused.stderr
    _untouched(tmp_path, tmp_path / "new")


def test_restore_refuses_a_ca_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    data_dir, archive = tmp_path / "data", tmp_path / "backup.tar.gz"
    orchardist(data_dir, "init", "--hostname", "localhost")
    os.replace(data_dir / "pki" / "server.key", data_dir / "pki" / "ca.key")
    orchardist(data_dir, "backup", str(archive))
    refused = _run(tmp_path / "new", "restore", str(archive))
    assert refused.returncode == 1
    assert "keys do not hold together" in refused.stderr
    # Encrypted with a passphrase per file name: the moved key does not even open.
    assert "another key file moved here" in refused.stderr
    _untouched(tmp_path, tmp_path / "new")


def test_backup_refuses_to_replace_an_archive(tmp_path: Path) -> None:
    archive = _backed_up(tmp_path)
    before = archive.read_bytes()
    refused = _run(tmp_path / "data", "backup", str(archive))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert archive.read_bytes() == before


def test_the_pg_dump_step_never_shows_the_password() -> None:
    line = pg_dump_command(
        "postgresql+asyncpg://mdm:s3cret@db.internal:5433/orchardist", Path("/b/nightly.tar.gz")
    )
    assert line == (
        "pg_dump --format=custom --file=/b/nightly.dump 'postgresql://mdm@db.internal:5433/orchardist'"
    )
    assert "s3cret" not in line
