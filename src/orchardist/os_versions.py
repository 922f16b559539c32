"""OS versions as Apple writes them ("17.2.1"), read as numbers: 17.10 comes after 17.9,
which a text comparison gets wrong. Used by compliance (a minimum OS version) and by the
device list (sorting and filtering by OS version)."""

from __future__ import annotations

import re

# Parts kept in a sort key; Apple's versions have three (macOS 14.2.1), a fourth is spare.
KEY_PARTS = 4
_PART_DIGITS = 6
_LEADING = re.compile(r"\d{1,9}(?:\.\d{1,9})*")


def version_parts(text: str | None) -> tuple[int, ...] | None:
    """The numbers a version starts with ("17.2.1" → (17, 2, 1), "17.2 beta" → (17, 2)),
    or None when it does not start with one."""
    if not text:
        return None
    found = _LEADING.match(text.strip())
    return None if found is None else tuple(int(part) for part in found.group().split("."))


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """`version_parts` without trailing zeros, so that 17, 17.0 and 17.0.0 compare equal."""
    parts = version_parts(text)
    while parts is not None and len(parts) > 1 and parts[-1] == 0:
        parts = parts[:-1]
    return parts


def sort_key(text: str | None) -> str | None:
    """Digits that sort as the version does (each part zero-padded to the same width, no
    punctuation, so that every collation orders them alike), for an indexed column; None
    for a missing or unreadable version."""
    parts = version_parts(text)
    if parts is None:
        return None
    return "".join(_part(part) for part in (parts + (0,) * KEY_PARTS)[:KEY_PARTS])


def key_range(parts: tuple[int, ...]) -> tuple[str, str]:
    """The sort keys of every version that begins with `parts`, both ends included: "17.2"
    covers 17.2 itself and every 17.2.x, not 17.20."""
    prefix = "".join(_part(part) for part in parts[:KEY_PARTS])
    width = KEY_PARTS * _PART_DIGITS
    return prefix.ljust(width, "0"), prefix.ljust(width, "9")


def _part(number: int) -> str:
    return f"{min(number, 10**_PART_DIGITS - 1):0{_PART_DIGITS}d}"
