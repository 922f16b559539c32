"""orchardist.apps.safezip through read_ipa: archives that are not zips, zip bombs (declared
and lying), unsafe names, symlinks and other tricks are refused before harm is done."""

from __future__ import annotations

import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from orchardist.apps.cgbi import png_size
from orchardist.apps.ipa import IpaError, IpaLimits, read_ipa
from tests.apps.factory import build_ipa

APP = "Payload/Expenses.app"


@pytest.mark.parametrize(
    "content",
    [b"", b"just some text, not an archive", b"PK\x03\x04" + bytes(100), bytes(5000)],
)
def test_not_a_zip_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.ipa"
    path.write_bytes(content)
    with pytest.raises(IpaError, match="not a zip archive"):
        read_ipa(path)


def test_a_truncated_zip_is_refused(tmp_path: Path) -> None:
    whole = build_ipa(tmp_path / "a.ipa").read_bytes()
    cut = tmp_path / "cut.ipa"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IpaError, match="not a zip archive"):
        read_ipa(cut)


def test_a_high_ratio_member_is_refused_as_a_bomb(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa", extra_members={f"{APP}/zeros.bin": bytes(8 << 20)})
    with pytest.raises(IpaError, match=r"zeros.bin' inflates 8,388,608 bytes from .* \(a zip bomb"):
        read_ipa(ipa)


def test_declared_sizes_over_the_limits_are_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with pytest.raises(IpaError, match="at most 1,000 per file"):
        read_ipa(ipa, IpaLimits(max_member_size=1000))
    with pytest.raises(IpaError, match="declares more than 10,000 bytes inflated"):
        read_ipa(ipa, IpaLimits(max_total_size=10_000))


def test_a_member_whose_header_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    # 4 MiB of zeros declared as 4,000 bytes: the declared ratio looks harmless, the bytes
    # inflated do not match the header (zipfile stops at the declared size; the CRC fails).
    ipa = build_ipa(tmp_path / "a.ipa", extra_members={f"{APP}/liar.bin": bytes(4 << 20)})
    _patch_sizes(ipa, f"{APP}/liar.bin", 4000)
    with pytest.raises(IpaError, match=r"liar.bin is corrupt in the archive: Bad CRC-32"):
        read_ipa(ipa)


def test_an_info_plist_whose_header_lies_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa", binary_plist=False)
    _patch_sizes(ipa, f"{APP}/Info.plist", 100)
    with pytest.raises(IpaError, match=r"Info.plist is corrupt in the archive"):
        read_ipa(ipa)


def test_damaged_compressed_data_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    _damage(ipa, f"{APP}/Expenses")
    with pytest.raises(IpaError, match=r"Payload/Expenses.app/Expenses is corrupt in the archive"):
        read_ipa(ipa)


def test_a_damaged_icon_gives_way_to_the_next_largest(tmp_path: Path) -> None:
    # Only without verify_members: with it, the damaged member refuses the whole .ipa.
    ipa = build_ipa(tmp_path / "a.ipa")
    _damage(ipa, f"{APP}/AppIcon60x60@3x.png")
    app = read_ipa(ipa, IpaLimits(verify_members=False))
    assert app.icon_source == f"{APP}/AppIcon60x60@2x.png"
    assert app.icon_png is not None
    assert png_size(app.icon_png) == (120, 120)


def test_too_many_members_are_refused_before_parsing(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with pytest.raises(IpaError, match="the archive has 7 entries: at most 5 are accepted"):
        read_ipa(ipa, IpaLimits(max_members=5))


@pytest.mark.parametrize(
    "name",
    [
        "Payload/../../etc/cron.d/evil",
        f"{APP}/../../outside",
        "/etc/passwd",
        f"{APP}\\Frameworks\\x.dylib",
        "C:/Windows/evil.dll",
    ],
)
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with zipfile.ZipFile(ipa, "a") as archive:
        archive.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(IpaError, match="unsafe name"):
        read_ipa(ipa)


def test_a_name_with_a_nul_is_refused(tmp_path: Path) -> None:
    # zipfile cuts names at a NUL when writing and reading: only the raw bytes hold one.
    ipa = build_ipa(tmp_path / "a.ipa", extra_members={f"{APP}/cutX.png": b"x"})
    ipa.write_bytes(ipa.read_bytes().replace(b"/cutX.png", b"/cut\x00.png"))
    with pytest.raises(IpaError, match="unsafe name"):
        read_ipa(ipa)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    link = zipfile.ZipInfo(f"{APP}/Info2.plist")
    link.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(ipa, "a") as archive:
        archive.writestr(link, b"/etc/passwd")
    with pytest.raises(IpaError, match=r"symbolic link 'Payload/Expenses.app/Info2.plist'"):
        read_ipa(ipa)


def test_a_name_twice_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name": that is the point
        with zipfile.ZipFile(ipa, "a") as archive:
            archive.writestr(f"{APP}/Info.plist", b"<plist/>")
    with pytest.raises(IpaError, match=r"holds 'Payload/Expenses.app/Info.plist' twice"):
        read_ipa(ipa)


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    # Fifield's bomb: central directory entries pointing into one member's data.
    ipa = build_ipa(tmp_path / "a.ipa")
    data = bytearray(ipa.read_bytes())
    second_entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second_entry + 42, 0)  # its local header offset := 0
    ipa.write_bytes(bytes(data))
    with pytest.raises(IpaError, match="share bytes in the archive"):
        read_ipa(ipa)


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    data = bytearray(ipa.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 8] |= 0x01  # general purpose flag bit 0: encrypted
    ipa.write_bytes(bytes(data))
    with pytest.raises(IpaError, match="is encrypted in the archive"):
        read_ipa(ipa)


def test_other_compression_methods_are_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with zipfile.ZipFile(ipa, "a") as archive:
        archive.writestr(f"{APP}/data.bin", b"x" * 100, compress_type=zipfile.ZIP_BZIP2)
    with pytest.raises(IpaError, match="unsupported compression method 12"):
        read_ipa(ipa)


def _patch_sizes(ipa: Path, name: str, size: int) -> None:
    """Declare `size` inflated bytes for `name` in its local header and central entry."""
    data = bytearray(ipa.read_bytes())
    encoded = name.encode()
    local = _header_for(data, b"PK\x03\x04", 30, 26, encoded)
    struct.pack_into("<I", data, local + 22, size)
    central = _header_for(data, b"PK\x01\x02", 46, 28, encoded)
    struct.pack_into("<I", data, central + 24, size)
    ipa.write_bytes(bytes(data))


def _damage(ipa: Path, name: str) -> None:
    """Overwrite the middle of a member's compressed data."""
    data = bytearray(ipa.read_bytes())
    local = _header_for(data, b"PK\x03\x04", 30, 26, name.encode())
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    (compressed,) = struct.unpack_from("<I", data, local + 18)
    middle = local + 30 + name_length + extra_length + compressed // 2
    data[middle : middle + 16] = b"\xff" * 16
    ipa.write_bytes(bytes(data))


def _header_for(
    data: bytearray, signature: bytes, fixed: int, name_length_at: int, name: bytes
) -> int:
    """The offset of the header with this signature whose name is `name`."""
    at = data.find(signature)
    while at >= 0:
        (length,) = struct.unpack_from("<H", data, at + name_length_at)
        if data[at + fixed : at + fixed + length] == name:
            return at
        at = data.find(signature, at + 4)
    raise AssertionError(f"no header for {name!r}")
