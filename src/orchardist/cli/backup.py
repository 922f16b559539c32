"""`orchardist backup` and `orchardist restore`: the data folder in one archive and back.

What a backup holds and why is in backup_archive and docs/operations.md ("How do I back up
and restore?"). PostgreSQL is dumped by the admin's own `pg_dump`, which this command names
but never runs: pg_dump must match the server's major version, wants its own credentials,
and a large fleet's database is better served by the DBA's tooling (a dump schedule,
WAL archiving) than by a copy squeezed into this archive.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from cryptography import x509
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from orchardist.cli.backup_archive import (
    APP_FILES,
    DATABASE,
    BackupError,
    Manifest,
    check_sqlite,
    copy_sqlite,
    data_files,
    read_archive,
    write_archive,
)
from orchardist.cli.common import data_dir_of, err_console, fail, load_or_fail, settings_of
from orchardist.config import Settings
from orchardist.keys.master import MasterKeyError, MasterKeys
from orchardist.pki.ca import fingerprint_sha256
from orchardist.pki.store import KeyMaterialError, PkiFiles

T = TypeVar("T")
console = Console(highlight=False, soft_wrap=True)  # commands stay whole, for copying
SQLITE_PREFIX = "sqlite+aiosqlite:///"
# What a stale SQLite journal beside a restored database would do: be replayed into it.
_JOURNALS = (f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal")


def backup(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Argument(
            help="The archive to write (e.g. orchardist-backup.tar.gz), or a folder to write "
            "orchardist-backup-DATE.tar.gz in"
        ),
    ],
    app_files: Annotated[
        bool,
        typer.Option(
            "--app-files/--no-app-files",
            help="Include the uploaded .ipa files and icons (files/); leave them out when "
            "they are copied separately",
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing archive")] = False,
) -> None:
    """Copy the config, keys and certificates and (on SQLite) the database into one
    .tar.gz, readable by its owner only, while `serve` keeps running. On PostgreSQL, prints
    the pg_dump command that backs up the database."""
    settings = settings_of(ctx)
    out = _archive_path(out)
    if out.exists() and not force:
        fail(f"{out} exists", "choose another name, or add --force to replace it")
    if not out.parent.is_dir():
        fail(f"no folder {out.parent}", "create it first")
    database = _sqlite_file(settings)
    names = data_files(settings.data_dir, app_files=app_files, leave_out=out.resolve())
    members = {name: settings.data_dir / name for name in names}
    with tempfile.TemporaryDirectory(prefix=".orchardist-backup-", dir=out.parent) as staging:
        if database is not None:
            with err_console.status("Copying the database (SQLite online backup)…"):
                _or_fail(lambda: copy_sqlite(database, Path(staging) / DATABASE))
            members[DATABASE] = Path(staging) / DATABASE
        fields = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": version("orchardist"),
            "database": "sqlite" if database is not None else "postgresql",
            "app_files": app_files,
        }
        total = sum(path.stat().st_size for path in members.values())
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("Writing the archive", total=total)
            manifest = _or_fail(
                lambda: write_archive(out, members, fields, lambda n: bar.advance(task, n))
            )
    _print_backup(out, manifest, settings)


def restore(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="An archive made by `orchardist backup`")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore into a folder that is not empty, replacing its config, keys and "
            "database (stop `serve` first)",
        ),
    ] = False,
) -> None:
    """Restore a backup into the data folder (--data-dir), which must be new or empty:
    every file is checked against the archive's checksums, the database's integrity and
    the CA key against the CA certificate, before anything is moved into place."""
    target = data_dir_of(ctx)
    if not archive.is_file():
        fail(f"no archive {archive}", "give the .tar.gz that `orchardist backup` wrote")
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not force)):
        fail(
            f"{target} is not an empty folder: restore will not mix a backup into it",
            "restore into a new folder (`orchardist --data-dir NEW restore ARCHIVE`), or "
            "stop `serve` and add --force to replace its config, keys and database",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    try:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("Reading the archive", total=None)
            manifest = _or_fail(
                lambda: read_archive(archive, staging, lambda n: bar.advance(task, n)),
                f"{target} is unchanged",
            )
        settings = load_or_fail(staging)
        ca_sha256 = _check(staging, manifest, settings)
        _move_into(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print_restore(archive, target, manifest, settings, ca_sha256)


def _archive_path(out: Path) -> Path:
    if out.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return out / f"orchardist-backup-{stamp}.tar.gz"
    return out


def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file, or None on PostgreSQL."""
    url = settings.resolved_database_url
    if url.startswith("postgresql"):
        return None
    if not url.startswith(SQLITE_PREFIX):
        fail(f"backup knows SQLite and PostgreSQL, not {escape(url.split(':', 1)[0])}")
    return Path(url.removeprefix(SQLITE_PREFIX).split("?", 1)[0])


def _or_fail(work: Callable[[], T], hint: str | None = None) -> T:
    try:
        return work()
    except BackupError as exc:
        fail(escape(str(exc)), hint)


def _check(staging: Path, manifest: Manifest, settings: Settings) -> str:
    """The restored files' own checks (the key files opened with the master key the
    backup's settings name); the CA's SHA-256. Fails with the reason."""
    if manifest.database == "sqlite":
        if DATABASE not in manifest.files:
            fail("the backup says SQLite but holds no database", "nothing was restored")
        _or_fail(lambda: check_sqlite(staging / DATABASE), "nothing was restored")
    files = PkiFiles.in_data_dir(staging, _master_keys(settings))
    try:
        ca = files.load_ca()
        if files.has_server():
            files.load_server()
        files.load_ra()
        if files.has_push():
            _check_pair(files, files.push_cert, files.push_key)
    except KeyMaterialError as exc:
        shown = escape(str(exc).replace(str(staging), "<backup>"))
        fail(f"the backup's keys do not hold together: {shown}", "nothing was restored")
    return fingerprint_sha256(ca.certificate)


def _master_keys(settings: Settings) -> MasterKeys | None:
    """The master key the restored data dir will use: its master.key (in the backup), or
    the master_key / master_key_command its settings or the environment name. None for a
    backup from before the master key (no master.key: its key files are plaintext)."""
    from orchardist.keys.sources import key_source

    source = key_source(settings)
    if source.writable and not source.file.exists():
        return None
    try:
        return source.load()
    except MasterKeyError as exc:
        fail(
            f"cannot read the master key that opens the backup's keys: {escape(str(exc))}",
            "nothing was restored; give it the way the server held it (see docs/keys.md)",
        )


def _check_pair(files: PkiFiles, cert_path: Path, key_path: Path) -> None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyMaterialError(f"cannot read {cert_path.name}: {exc}") from None
    key = files.read_key(key_path)
    if cert.public_key() != key.public_key():
        raise KeyMaterialError(f"{key_path.name} is not the key of {cert_path.name}")


def _move_into(staging: Path, target: Path) -> None:
    """Rename the checked files into the data folder (the same filesystem: each rename is
    atomic), replacing what --force allowed to replace, stale SQLite journals included."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)
    for journal in _JOURNALS:  # the target's stale ones, and those the check left
        (target / journal).unlink(missing_ok=True)
        (staging / journal).unlink(missing_ok=True)
    for entry in sorted(staging.iterdir()):
        replaced = target / entry.name
        if replaced.is_dir() and not replaced.is_symlink():
            shutil.rmtree(replaced)
        else:
            replaced.unlink(missing_ok=True)
        os.replace(entry, replaced)


def _print_backup(out: Path, manifest: Manifest, settings: Settings) -> None:
    size = out.stat().st_size
    parts = ["config", "keys and certificates"]
    parts += ["app files"] if any(n.startswith(f"{APP_FILES}/") for n in manifest.files) else []
    parts += ["the SQLite database"] if manifest.database == "sqlite" else []
    console.print(f"Backed up {', '.join(parts)} to {escape(str(out))} ({size:,} bytes, mode 0600)")
    if not manifest.app_files:
        console.print(f"  app files left out: copy {settings.data_dir / APP_FILES}/ yourself")
    if manifest.database == "postgresql":
        console.print("The PostgreSQL database is not in the archive. Back it up now with:")
        console.print(f"  {escape(pg_dump_command(settings.resolved_database_url, out))}")
        console.print("  (set PGPASSWORD or ~/.pgpass for the password; see docs/operations.md)")
    console.print("It holds the CA's private key: keep it where only admins can read it.")


def pg_dump_command(url: str, out: Path) -> str:
    """The pg_dump line for the server's database, its password left out."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    libpq = urlunsplit(("postgresql", f"{user}{host}{port}", parts.path, "", ""))
    dump = out.with_name(out.name.removesuffix(".tar.gz") + ".dump")
    return f"pg_dump --format=custom --file={dump} '{libpq}'"


def _print_restore(
    archive: Path, target: Path, manifest: Manifest, settings: Settings, ca_sha256: str
) -> None:
    console.print(
        f"Restored {escape(str(archive))} (made {manifest.created} by orchardist "
        f"{manifest.version}) into {escape(str(target))}"
    )
    checked = "checksums ok, CA key matches the CA certificate"
    if manifest.database == "sqlite":
        checked += ", database integrity_check ok"
    console.print(f"  checked: {checked}")
    console.print(f"  CA SHA-256 {ca_sha256}")
    console.print("Next:")
    if manifest.database == "postgresql":
        console.print(
            "  - the database is not in this archive: if it is lost, restore the dump taken "
            "with this backup (pg_restore --clean --if-exists --no-owner --dbname URL FILE); "
            "if this folder's database_url names the same database as before, nothing to do"
        )
    elif settings.database_url:
        console.print(
            f"  - the database was restored to {escape(str(target / DATABASE))}, but "
            "database_url names another file: point it there or move the file"
        )
    if not manifest.app_files:
        console.print("  - app files were left out of the backup: copy files/ into it")
    console.print(f"  - if this is a new machine, make {escape(settings.base_url)} reach it")
    console.print(f"  - start it: orchardist --data-dir {escape(str(target))} serve")
