"""Reading MDM messages: the plist reader (`orchardist.plists`) plus what check-ins and
reports need on top of it: an enumerated field, and which device a message speaks for."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from orchardist.plists import PlistError

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


MAX_DEVICE_ID = 128  # what storage keeps (UDIDs are 25 or 40 characters)


def device_id_of(fields: Mapping[str, Any]) -> str:
    """The UDID, or for a User Enrollment its EnrollmentID."""
    for key in ("UDID", "EnrollmentID"):
        if key not in fields:
            continue
        value = fields[key]
        if not isinstance(value, str) or not value or len(value) > MAX_DEVICE_ID:
            raise PlistError(
                f"{key} must be a non-empty string of at most {MAX_DEVICE_ID} characters"
            )
        return value
    raise PlistError("neither UDID nor EnrollmentID says which device this is")
