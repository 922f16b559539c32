"""Reading an untrusted zip archive (an uploaded .ipa) without trusting what it says.

`SafeZip.open(source, limits)` refuses, before anything is inflated: a file that is not a
zip; more members than allowed (counted from the end-of-central-directory record before
`zipfile` builds an object per member); names that are absolute, contain `..`, a backslash,
a drive letter or NUL; duplicate names; symbolic links (Unix mode in `external_attr`);
encrypted members; compression other than stored or deflate; declared sizes over the
per-member or total limits; a compression ratio over the limit (a zip bomb); entries whose
data overlap (the "overlapping files" bomb, where many entries inflate the same bytes).

Headers can lie, so every read also counts the bytes actually inflated: `read(name, cap)`
stops past `cap` and `drain_all()` inflates each member once (checking its CRC, which
`zipfile` does at the end of each member) with the total counted against the limit.
Members are streamed in 64 KiB pieces: the archive is never in memory.
"""

from __future__ import annotations

import itertools
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_PIECE = 64 * 1024
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_LOCAL_HEADER = 30  # fixed part of a local file header (APPNOTE 4.3.7)
# What zipfile raises on a damaged archive (struct.error: a truncated record).
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    struct.error,
    zlib.error,
)
MiB = 1024 * 1024
GiB = 1024 * MiB


class IpaError(ValueError):
    """An .ipa we refuse; str(err) says why in words an admin can act on."""


@dataclass(frozen=True)
class IpaLimits:
    """What an .ipa may declare and inflate. Ratios apply to members of at least
    `ratio_floor` bytes: a tiny file's ratio says nothing."""

    max_members: int = 100_000
    max_member_size: int = 4 * GiB
    max_total_size: int = 16 * GiB  # all members, inflated
    max_ratio: int = 200  # inflated / compressed, per member
    ratio_floor: int = 1 * MiB
    max_info_plist: int = 1 * MiB
    max_icon: int = 4 * MiB  # one icon file as stored in the bundle
    # Inflate every member once (CRC and byte counts): catches a corrupt archive and
    # headers that lie before any device downloads it. About 2 s per 500 MB.
    verify_members: bool = True


class SafeZip:
    """A checked zip archive; build with `SafeZip.open`."""

    def __init__(self, archive: zipfile.ZipFile, limits: IpaLimits):
        self._archive = archive
        self.limits = limits
        self.members = {info.filename: info for info in archive.infolist()}

    @classmethod
    @contextmanager
    def open(cls, source: Path | BinaryIO, limits: IpaLimits) -> Iterator[SafeZip]:
        with _opened(source) as handle:
            entries = _declared_entries(handle)
            if entries > limits.max_members:
                raise IpaError(
                    f"the archive has {entries:,} entries: at most {limits.max_members:,} "
                    "are accepted"
                )
            try:
                archive = zipfile.ZipFile(handle)
            except _CORRUPT as exc:
                raise IpaError(f"not a zip archive (an .ipa is one): {exc}") from exc
            with archive:
                _check_members(archive.infolist(), limits)
                yield cls(archive, limits)

    def read(self, name: str, cap: int, what: str) -> bytes:
        """A member's bytes; IpaError when it inflates past `cap` (or past its header)."""
        info = self.members[name]
        if info.file_size > cap:
            raise IpaError(f"{what} is {info.file_size:,} bytes: at most {cap:,} are read")
        return b"".join(self._pieces(info, cap, what))

    def read_head(self, name: str, count: int) -> bytes:
        """The first `count` inflated bytes of a member (no CRC check: it is not read whole)."""
        try:
            with self._archive.open(self.members[name]) as member:
                return member.read(count)
        except _CORRUPT as exc:
            raise IpaError(f"{name} is corrupt in the archive: {exc}") from exc

    def drain_all(self) -> None:
        """Inflate every member once, discarding the bytes (see the module docstring)."""
        total = 0
        for info in self.members.values():
            for piece in self._pieces(info, self.limits.max_member_size, info.filename):
                total += len(piece)
                if total > self.limits.max_total_size:
                    raise IpaError(
                        f"the archive inflates to more than {self.limits.max_total_size:,} "
                        "bytes (a zip bomb?)"
                    )

    def _pieces(self, info: zipfile.ZipInfo, cap: int, what: str) -> Iterator[bytes]:
        count = 0
        try:
            with self._archive.open(info) as member:
                while piece := member.read(_PIECE):
                    count += len(piece)
                    if count > min(cap, info.file_size):
                        raise IpaError(f"{what} inflates to more bytes than its header says")
                    yield piece
        except IpaError:
            raise
        except _CORRUPT as exc:
            raise IpaError(f"{what} is corrupt in the archive: {exc}") from exc


@contextmanager
def _opened(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    if not isinstance(source, Path):
        yield source
        return
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise IpaError(f"cannot read {source}: {exc.strerror}") from exc
    with handle:
        yield handle


def _declared_entries(handle: BinaryIO) -> int:
    """The entry count in the end-of-central-directory record (APPNOTE 4.3.16), or its
    Zip64 version (4.3.14) when the 16-bit field is saturated."""
    size = handle.seek(0, 2)
    tail_length = min(size, 22 + 0xFFFF)  # the record, then a comment of up to 64 KiB
    handle.seek(size - tail_length)
    tail = handle.read(tail_length)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        raise IpaError("not a zip archive (an .ipa is one): no end of central directory")
    (entries,) = struct.unpack_from("<H", tail, at + 10)
    locator = at - 20
    if entries == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        (record_at,) = struct.unpack_from("<Q", tail, locator + 8)
        handle.seek(record_at)
        record = handle.read(56)
        if len(record) == 56 and record.startswith(_ZIP64_EOCD):
            (entries,) = struct.unpack_from("<Q", record, 32)
    handle.seek(0)
    return int(entries)


def _check_members(infos: list[zipfile.ZipInfo], limits: IpaLimits) -> None:
    if len(infos) > limits.max_members:
        raise IpaError(f"the archive has more than {limits.max_members:,} members")
    seen: set[str] = set()
    total = 0
    for info in infos:
        _check_name(info.orig_filename)  # zipfile cuts `filename` at a NUL; this is whole
        _check_name(info.filename)
        if info.filename in seen:
            raise IpaError(f"the archive holds {info.filename!r} twice")
        seen.add(info.filename)
        _check_member(info, limits)
        total += info.file_size
        if total > limits.max_total_size:
            raise IpaError(
                f"the archive declares more than {limits.max_total_size:,} bytes inflated "
                "(a zip bomb?)"
            )
    _check_no_overlap(infos)


def _check_name(name: str) -> None:
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise IpaError(f"the archive holds an unsafe name {name!r} (absolute, .. or backslash)")


def _check_member(info: zipfile.ZipInfo, limits: IpaLimits) -> None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        raise IpaError(f"the archive holds a symbolic link {name!r}: links are not accepted")
    if info.flag_bits & 0x1:
        raise IpaError(f"{name!r} is encrypted in the archive")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise IpaError(f"{name!r} uses an unsupported compression method {info.compress_type}")
    if info.file_size > limits.max_member_size:
        raise IpaError(
            f"{name!r} is {info.file_size:,} bytes inflated: at most "
            f"{limits.max_member_size:,} per file are accepted"
        )
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise IpaError(f"{name!r} is stored uncompressed but its two sizes differ")
    ratio_exceeded = info.file_size > info.compress_size * limits.max_ratio
    if info.file_size >= limits.ratio_floor and ratio_exceeded:
        raise IpaError(
            f"{name!r} inflates {info.file_size:,} bytes from {info.compress_size:,}: more "
            f"than {limits.max_ratio} times (a zip bomb?)"
        )


def _check_no_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Each entry's local header and data end before the next entry begins."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for current, following in itertools.pairwise(ordered):
        # zipfile decoded the name as UTF-8 when flag bit 11 says so, else as CP437.
        encoding = "utf-8" if current.flag_bits & 0x800 else "cp437"
        name_length = len(current.filename.encode(encoding, errors="replace"))
        end = current.header_offset + _LOCAL_HEADER + name_length + current.compress_size
        if end > following.header_offset:
            raise IpaError(
                f"{current.filename!r} and {following.filename!r} share bytes in the archive "
                "(an overlapping-entries zip bomb?)"
            )
