"""orchardist.apps.cgbi: Apple's CgBI icons become PNGs that Pillow (the independent
decoder here, as a browser would be) reads with the original pixels."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from orchardist.apps.cgbi import PngError, is_cgbi, normalize_png, png_size
from tests.apps.factory import PNG_SIGNATURE, cgbi_png, png_chunk, sample_rgba


def test_cgbi_icon_converts_to_the_original_pixels() -> None:
    width, height = 40, 30  # not square: rows and columns cannot be swapped unnoticed
    converted = normalize_png(cgbi_png(width, height))
    image = Image.open(io.BytesIO(converted))
    assert (image.size, image.mode) == ((width, height), "RGBA")
    got, want = image.tobytes(), sample_rgba(width, height)
    for i in range(0, len(want), 4):
        alpha = want[i + 3]
        assert got[i + 3] == alpha
        # Premultiplying by alpha loses precision; un-premultiplying is exact when opaque
        # and within 255 / alpha (rounded) otherwise.
        tolerance = 0 if alpha in (0, 255) else 255 // alpha + 1
        for channel in range(3):
            assert abs(got[i + channel] - want[i + channel]) <= tolerance, (i // 4, channel)


def test_converted_png_is_standard() -> None:
    converted = normalize_png(cgbi_png(12, 12))
    assert not is_cgbi(converted)
    kinds = _chunk_kinds(converted)
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    Image.open(io.BytesIO(converted)).verify()  # CRCs and zlib stream checked by Pillow


def test_size_is_read_from_either_kind() -> None:
    assert png_size(cgbi_png(20, 10)) == (20, 10)
    assert png_size(normalize_png(cgbi_png(20, 10))) == (20, 10)


def test_a_standard_png_is_returned_unchanged() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (3, 2), (10, 20, 30, 255)).save(buffer, "PNG")
    standard = buffer.getvalue()
    assert normalize_png(standard) is standard


def test_ancillary_chunks_are_kept_and_apples_are_dropped() -> None:
    original = cgbi_png(8, 8)
    text = png_chunk(b"tEXt", b"Comment\x00made by pngcrush")
    idot = png_chunk(b"iDOT", bytes(28))
    at = original.index(b"IDAT") - 4
    converted = normalize_png(original[:at] + text + idot + original[at:])
    assert _chunk_kinds(converted) == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "PNG signature"),
        (b"GIF89a" + bytes(40), "PNG signature"),
        (PNG_SIGNATURE + b"\x00\x00", "cut off"),
        (PNG_SIGNATURE + png_chunk(b"CgBI", bytes(4)), "cut off"),
    ],
)
def test_garbage_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(PngError, match=reason):
        normalize_png(data)


def test_a_bad_checksum_is_refused() -> None:
    damaged = bytearray(cgbi_png(8, 8))
    damaged[-20] ^= 0xFF  # inside IDAT's data
    with pytest.raises(PngError, match="bad checksum"):
        normalize_png(bytes(damaged))


def test_image_data_that_is_not_deflate_is_refused() -> None:
    header = struct.pack(">IIBBBBB", 4, 4, 8, 6, 0, 0, 0)
    broken = _cgbi(header, b"\xff" * 40)
    with pytest.raises(PngError, match="not valid deflate"):
        normalize_png(broken)


def test_image_data_of_the_wrong_size_is_refused() -> None:
    header = struct.pack(">IIBBBBB", 4, 4, 8, 6, 0, 0, 0)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    short = deflater.compress(bytes(10)) + deflater.flush()
    with pytest.raises(PngError, match="holds 10 bytes where its size needs 68"):
        normalize_png(_cgbi(header, short))


def test_a_huge_cgbi_image_is_refused_before_inflating() -> None:
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 6, 0, 0, 0)
    with pytest.raises(PngError, match="at most 1024 x 1024"):
        normalize_png(_cgbi(header, b"\x00"))


def _cgbi(header: bytes, data: bytes) -> bytes:
    return b"".join(
        (
            PNG_SIGNATURE,
            png_chunk(b"CgBI", b"\x50\x00\x20\x06"),
            png_chunk(b"IHDR", header),
            png_chunk(b"IDAT", data),
            png_chunk(b"IEND", b""),
        )
    )


def _chunk_kinds(png: bytes) -> list[bytes]:
    kinds, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack_from(">I", png, offset)
        kinds.append(png[offset + 4 : offset + 8])
        offset += 12 + length
    return kinds
