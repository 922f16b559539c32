"""Reading device plists: the one place that turns bytes into a dictionary or a reason."""

from __future__ import annotations

import plistlib
from typing import Any
from xml.parsers.expat import ExpatError


class PlistError(ValueError):
    """The body is not a plist dictionary; str(err) says why, for a 400."""


def load_dictionary(body: bytes) -> dict[str, Any]:
    """The top-level dictionary of an XML or binary plist. plistlib refuses XML entity
    declarations, so entity-expansion bombs never expand."""
    if not body:
        raise PlistError("the body is empty: a plist dictionary is expected")
    try:
        value = plistlib.loads(body)
    except (ExpatError, ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:
        # InvalidFileException is a ValueError; the binary reader can also raise the others.
        raise PlistError(f"malformed plist: {exc}") from exc
    if not isinstance(value, dict):
        raise PlistError(f"the plist holds a {type(value).__name__}, not a dictionary")
    return value
