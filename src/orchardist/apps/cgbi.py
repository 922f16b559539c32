"""Apple's CgBI PNGs turned into PNGs a browser shows.

Xcode runs app icons through Apple's modified pngcrush (`-iphone`), which writes a PNG that
only iOS reads: a `CgBI` chunk before IHDR, IDAT holding raw deflate (no zlib header or
Adler-32), pixels in BGR(A) order with the colour premultiplied by alpha. Browsers show such
a file as broken. `normalize_png` undoes each step: drops CgBI (and Apple's `iDOT`, whose
offsets point into the IDAT layout we replace), inflates the raw stream, undoes the row
filters, swaps BGR(A) to RGB(A), un-premultiplies, then writes one zlib IDAT with fresh
CRCs. No maintained library handles CgBI (Pillow, libpng and browsers refuse it), and the
format is small enough to convert here by hand.

`png_size` reads the width and height from IHDR of either kind, which is how the .ipa
reader picks the largest icon without decoding any.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A converted icon is at most this many pixels: Apple's largest app icon is 1024 x 1024, and
# the bound keeps the memory and (pure Python) time a hostile "icon" can cost to seconds.
MAX_PIXELS = 1024 * 1024

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_DROPPED = {b"CgBI", b"iDOT", b"IDAT", b"IEND"}  # rewritten or meaningless after conversion


class PngError(ValueError):
    """Not a PNG, or a PNG that cannot be converted; str(err) says which."""


def is_cgbi(data: bytes) -> bool:
    """Whether `data` is an Apple CgBI PNG (the CgBI chunk comes first, before IHDR)."""
    return data.startswith(PNG_SIGNATURE) and data[12:16] == b"CgBI"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR of a standard or CgBI PNG; PngError if none."""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            return _Header.parse(body).size
        if kind != b"CgBI":
            break
    raise PngError("not a PNG image: IHDR is not the first chunk")


def normalize_png(data: bytes) -> bytes:
    """A standard PNG for `data`: CgBI converted, a standard PNG returned unchanged."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngError("not a PNG image (the file does not start with the PNG signature)")
    if not is_cgbi(data):
        png_size(data)  # a PNG at least in its header; the rest is the browser's business
        return data
    header: _Header | None = None
    kept: list[tuple[bytes, bytes]] = []
    deflated: list[bytes] = []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = _Header.parse(body)
        elif kind == b"IDAT":
            deflated.append(body)
        if kind not in _DROPPED:
            kept.append((kind, body))
    if header is None:
        raise PngError("the CgBI PNG has no IHDR chunk")
    width, height = header.size
    if width * height > MAX_PIXELS:
        raise PngError(f"the CgBI PNG is {width} x {height} pixels: at most 1024 x 1024 is read")
    if not deflated:
        raise PngError("the CgBI PNG has no image data (IDAT)")
    rows = _unfilter(header, _inflate_raw(b"".join(deflated), header.raw_size))
    pixels = _to_straight_rgba(header, rows)
    return _write_png(kept, header, pixels)


class _Header:
    def __init__(self, width: int, height: int, depth: int, colour: int, interlace: int):
        self.size = (width, height)
        self.depth, self.colour, self.interlace = depth, colour, interlace
        self.channels = _CHANNELS[colour]
        self.stride = (width * self.channels * depth + 7) // 8  # bytes per row, no filter byte
        self.pixel_bytes = max(1, self.channels * depth // 8)  # the filters' "bpp"
        self.raw_size = height * (self.stride + 1)

    @classmethod
    def parse(cls, body: bytes) -> _Header:
        if len(body) != 13:
            raise PngError("the PNG's IHDR chunk has the wrong length")
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        if colour not in _CHANNELS or depth not in (1, 2, 4, 8, 16):
            raise PngError(f"the PNG has an invalid colour type {colour} or depth {depth}")
        if width == 0 or height == 0:
            raise PngError("the PNG has no pixels (its width or height is 0)")
        return cls(width, height, depth, colour, interlace)


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk up to IEND; PngError on truncation or a bad CRC."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngError("not a PNG image (the file does not start with the PNG signature)")
    offset = len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        end = offset + 8 + length
        if end + 4 > len(data):
            raise PngError(f"the PNG is cut off inside its {kind!r} chunk")
        body = data[offset + 8 : end]
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(kind + body) != crc:
            raise PngError(f"the PNG's {kind.decode('latin-1')} chunk has a bad checksum")
        yield kind, body
        if kind == b"IEND":
            return
        offset = end + 4
    raise PngError("the PNG is cut off (no IEND chunk)")


def _inflate_raw(stream: bytes, expected: int) -> bytes:
    """Inflate CgBI's headerless deflate stream, never to more than the image needs."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(stream, expected + 1)
    except zlib.error as exc:
        raise PngError(f"the CgBI PNG's image data is not valid deflate data: {exc}") from exc
    if len(raw) != expected:
        raise PngError(
            f"the CgBI PNG's image data holds {len(raw)} bytes where its size needs {expected}"
        )
    return raw


def _unfilter(header: _Header, raw: bytes) -> list[bytearray]:
    """The image rows with the PNG row filters (PNG spec §9) undone."""
    if header.interlace:
        raise PngError("interlaced CgBI PNGs are not supported (Xcode does not write them)")
    stride, bpp = header.stride, header.pixel_bytes
    previous = bytearray(stride)
    rows: list[bytearray] = []
    for y in range(header.size[1]):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _UNFILTERS.get(kind, _bad_filter)(row, previous, bpp)
        rows.append(row)
        previous = row
    return rows


def _bad_filter(row: bytearray, previous: bytearray, bpp: int) -> None:
    raise PngError("the CgBI PNG uses an unknown row filter")


def _no_filter(row: bytearray, previous: bytearray, bpp: int) -> None:
    return


def _sub(row: bytearray, previous: bytearray, bpp: int) -> None:
    for i in range(bpp, len(row)):
        row[i] = (row[i] + row[i - bpp]) & 0xFF


def _up(row: bytearray, previous: bytearray, bpp: int) -> None:
    row[:] = bytes((a + b) & 0xFF for a, b in zip(row, previous, strict=True))


def _average(row: bytearray, previous: bytearray, bpp: int) -> None:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF


def _paeth(row: bytearray, previous: bytearray, bpp: int) -> None:
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        row[i] = (row[i] + predictor) & 0xFF


_UNFILTERS = {0: _no_filter, 1: _sub, 2: _up, 3: _average, 4: _paeth}


def _to_straight_rgba(header: _Header, rows: list[bytearray]) -> list[bytearray]:
    """Rows in RGB(A) order with straight alpha. Only 8-bit samples carry colour order
    and premultiplication that need undoing; grey and palette images pass as they are."""
    colour, depth = header.colour, header.depth
    if colour in (0, 3):
        return rows
    if depth != 8:
        raise PngError(f"CgBI PNGs with {depth}-bit colour are not supported")
    for row in rows:
        if colour in (2, 6):  # BGR(A) -> RGB(A): swap the first and third sample
            step = header.channels
            row[0::step], row[2::step] = row[2::step], row[0::step]
        if colour in (4, 6):
            _unpremultiply(row, header.channels)
    return rows


def _unpremultiply(row: bytearray, step: int) -> None:
    """colour = premultiplied * 255 / alpha, rounded; fully transparent pixels stay 0."""
    for alpha_at in range(step - 1, len(row), step):
        alpha = row[alpha_at]
        if alpha in (0, 255):
            continue
        for i in range(alpha_at - step + 1, alpha_at):
            row[i] = min(255, (row[i] * 255 + alpha // 2) // alpha)


def _write_png(kept: list[tuple[bytes, bytes]], header: _Header, rows: list[bytearray]) -> bytes:
    """A standard PNG: the kept chunks in order (IHDR first), one zlib IDAT, IEND."""
    filtered = b"".join(b"\x00" + row for row in rows)  # filter type None on every row
    parts = [PNG_SIGNATURE]
    for kind, body in kept:
        parts.append(_chunk(kind, body))
    parts.append(_chunk(b"IDAT", zlib.compress(filtered, 9)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
