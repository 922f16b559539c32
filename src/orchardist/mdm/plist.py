"""Reading device plists: the one place that turns bytes into a dictionary or a reason."""

from __future__ import annotations

import enum
import plistlib
from collections.abc import Mapping
from typing import Any, TypeVar
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


E = TypeVar("E", bound=enum.Enum)


def enum_field(fields: Mapping[str, Any], key: str, kind: type[E]) -> E:
    """The value of `key` as a member of `kind`; PlistError says whether it is missing or
    unknown."""
    raw = fields.get(key)
    if not isinstance(raw, str) or not raw:
        raise PlistError(f"{key} is missing")
    try:
        return kind(raw)
    except ValueError as exc:
        raise PlistError(f"unknown {key} {raw[:64]!r}") from exc


def device_id_of(fields: Mapping[str, Any]) -> str:
    """The UDID, or for a User Enrollment its EnrollmentID."""
    for key in ("UDID", "EnrollmentID"):
        if key not in fields:
            continue
        value = fields[key]
        if not isinstance(value, str) or not value or len(value) > 256:
            raise PlistError(f"{key} must be a non-empty string of at most 256 characters")
        return value
    raise PlistError("neither UDID nor EnrollmentID says which device this is")
