"""HTTP Range requests for stored files (RFC 9110 §14): which bytes to send.

One range only — `bytes=a-b`, `bytes=a-` and `bytes=-n` — which is what iOS's installer,
browsers and download managers resume with. What the RFC lets a server ignore is ignored
(the whole file is sent with 200): a unit other than bytes, a malformed or reversed range,
several ranges at once (a multipart/byteranges answer buys nobody anything here), and an
If-Range naming another version of the file. A well-formed range that starts past the end
(or `bytes=-0`) is unsatisfiable: 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


@dataclass(frozen=True)
class ByteRange:
    start: int  # first byte
    end: int  # one past the last byte, as a Python slice (iter_range's `end`)

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        """The Content-Range header of a 206 (HTTP's last-byte-pos is inclusive)."""
        return f"bytes {self.start}-{self.end - 1}/{size}"


class UnsatisfiableRangeError(Exception):
    """The range lies outside the file: answer 416."""


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The part of a `size`-byte file a Range header asks for; None for the whole file
    (no header, or one to ignore, see the module docstring); UnsatisfiableRangeError for a 416."""
    if header is None:
        return None
    found = _SPEC.fullmatch(header.strip().replace(" ", ""))
    if found is None:
        return None  # another unit, several ranges, or not a range at all
    first, last = found.group(1), found.group(2)
    if not first and not last:
        return None
    if not first:  # bytes=-n: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRangeError
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None  # a reversed range is invalid, and invalid ranges are ignored
    if start >= size:
        raise UnsatisfiableRangeError
    return ByteRange(start, min(end, size))


def if_range_allows(if_range: str | None, etag: str) -> bool:
    """Whether a Range may be honoured given If-Range: absent, or naming this file's
    (strong) ETag. A date, or another tag, means "send me the whole current file"."""
    return if_range is None or if_range.strip() == etag
