"""A backup archive: what goes into one, writing it, and reading it back verified.

A backup is one .tar.gz (a single file is easier to move, encrypt and keep than a folder):
`manifest.json` first, then the data folder's files, then a copy of the SQLite database
made with SQLite's online backup API. The manifest lists every file with its SHA-256, so a
restore notices a truncated or altered archive before anything lands in the data folder.

What is copied is the data folder minus what a restored server rebuilds or never needs
(`SKIPPED`): a list of exclusions rather than of inclusions, so key material that a later
version keeps in a new place (a secrets key, say) is in the backup without anyone having
to remember this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

MANIFEST = "manifest.json"
DATABASE = "orchardist.db"
FORMAT = 1
# The SQLite file and its journals (the database travels as the online-backup copy),
# lock files, the per-start metrics folder, unfinished uploads, the server's logs and
# hidden (temporary) files.
_SKIPPED_NAMES = {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal"}
_SKIPPED_DIRS = {"locks", "metrics", "files/incoming"}
APP_FILES = "files"
BLOCK = 1024 * 1024

Advance = Callable[[int], None]  # told how many bytes were just written or read


class BackupError(RuntimeError):
    """The backup cannot be made or read; str(err) says what and why."""


@dataclass(frozen=True)
class Manifest:
    created: str  # ISO 8601, UTC
    version: str  # the orchardist that made it
    database: str  # "sqlite" (in the archive) or "postgresql" (pg_dump it separately)
    app_files: bool  # whether files/ (.ipa files and icons) is in it
    files: dict[str, str]  # archive name -> SHA-256 of its bytes

    def to_json(self) -> bytes:
        body = {"format": FORMAT, **self.__dict__}
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            body = json.loads(data)
            if body.pop("format") != FORMAT:
                raise BackupError(f"a backup of format {FORMAT} is expected")
            return cls(**body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"its manifest is unreadable ({exc})") from None


def data_files(data_dir: Path, *, app_files: bool, leave_out: Path | None) -> list[str]:
    """The data folder's files to back up, as archive names (POSIX, relative), sorted."""
    names = []
    for root, dirs, files in os.walk(data_dir):
        here = Path(root)
        relative = here.relative_to(data_dir).as_posix()
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(relative, d, app_files))
        for name in sorted(files):
            path = here / name
            if _skipped_file(relative, name) or not path.is_file() or path == leave_out:
                continue
            names.append(path.relative_to(data_dir).as_posix())
    return names


def _skipped_dir(parent: str, name: str, app_files: bool) -> bool:
    path = name if parent == "." else f"{parent}/{name}"
    return path in _SKIPPED_DIRS or (path == APP_FILES and not app_files)


def _skipped_file(parent: str, name: str) -> bool:
    at_top = parent == "."
    if at_top and name in _SKIPPED_NAMES:
        return True
    return name.endswith((".log", ".lock", "-lock")) or name.startswith(".")


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database. The whole copy is one step (pages=-1),
    so it reads one snapshot: in WAL mode that blocks no writer, where a copy in steps
    would start over each time the server wrote between two of them."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    try:
        # mode=ro: a mistyped path must not create an empty database.
        with (
            closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None


def check_sqlite(path: Path) -> None:
    """PRAGMA integrity_check on a restored database; BackupError unless it says ok."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            rows = [row[0] for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise BackupError(f"the database in the backup is unreadable: {exc}") from None
    if rows != ["ok"]:
        raise BackupError(f"the database in the backup fails its integrity check: {rows[:3]}")


def write_archive(
    out: Path, members: dict[str, Path], manifest_fields: dict[str, Any], advance: Advance
) -> Manifest:
    """Write `members` (archive name -> file) to `out`, mode 0600, with the manifest first.
    Written under a temporary name beside `out` and renamed at the end: an interrupted
    backup leaves no half archive under the real name."""
    # Small files (keys, config) are read once, so what is summed is what is archived even
    # if one is rewritten meanwhile; large ones (app files, named by their own hash, and
    # our database copy) never change in place and are streamed.
    small = {n: p.read_bytes() for n, p in members.items() if p.stat().st_size < BLOCK}
    digests = {
        name: hashlib.sha256(small[name]).hexdigest() if name in small else _sha256(path)
        for name, path in members.items()
    }
    manifest = Manifest(**manifest_fields, files=digests)
    temporary = out.with_name(f".{out.name}.partial-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz") as tar:
                _add(tar, MANIFEST, io.BytesIO(manifest.to_json()), len(manifest.to_json()))
                for name, path in members.items():
                    if name in small:
                        _add(tar, name, io.BytesIO(small[name]), len(small[name]))
                        advance(len(small[name]))
                        continue
                    with path.open("rb") as source:
                        _add(tar, name, _Counted(source, advance), path.stat().st_size)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return manifest


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes] | _Counted, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, cast(IO[bytes], data))  # tarfile only calls read(n)


class _Counted:
    """A file whose reads are reported, for the progress bar."""

    def __init__(self, source: IO[bytes], advance: Advance) -> None:
        self.source, self.advance = source, advance

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.advance(len(data))
        return data


def read_archive(archive: Path, into: Path, advance: Advance) -> Manifest:
    """Unpack `archive` into the empty folder `into`, checking each file against the
    manifest; BackupError on anything unexpected (not an archive, cut short, a file
    missing, altered or not listed, a name that would land outside `into`)."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            manifest = _read_manifest(tar)
            seen = set()
            for member in _members(tar):
                if member.name not in manifest.files or member.name in seen:
                    raise BackupError(f"it holds {member.name!r}, which its manifest does not list")
                seen.add(member.name)
                digest = _extract(tar, member, into / member.name, advance)
                if digest != manifest.files[member.name]:
                    raise BackupError(f"{member.name} does not match its checksum")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"{archive} is not a readable backup ({exc})") from None
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise BackupError(f"it lacks {', '.join(missing[:5])}, which its manifest lists")
    return manifest


def _read_manifest(tar: tarfile.TarFile) -> Manifest:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupError(f"it does not start with {MANIFEST}: not an Orchardist backup")
    handle = tar.extractfile(first)
    assert handle is not None  # a regular file, checked above
    return Manifest.from_json(handle.read())


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:  # from the start again: the manifest first
        if member.name == MANIFEST and member.offset == 0:
            continue
        parts = PurePosixPath(member.name).parts
        if not member.isfile() or member.name.startswith("/") or ".." in parts:
            raise BackupError(f"it holds {member.name!r}, which no backup holds")
        yield member


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, advance: Advance) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    source = tar.extractfile(member)
    assert source is not None  # a regular file, checked by _members
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as target:
        while block := source.read(BLOCK):
            digest.update(block)
            target.write(block)
            advance(len(block))
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
