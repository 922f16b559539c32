"""Plist values ↔ JSON: JSON has no bytes, no dates and no NaN, so `<data>` travels as
base64, `<date>` as ISO 8601 and a non-finite `<real>` as a string. Which strings to convert
back is decided by the schema, never guessed."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from orchardist.schema.validate import ANY_KEY, KeySpec


def from_json(params: Mapping[str, Any], keys: Sequence[KeySpec]) -> dict[str, Any]:
    """The parameters with base64 strings turned into bytes and ISO strings into dates
    where the schema wants them; anything that does not convert is left for validation
    to report."""
    by_name = {spec.key: spec for spec in keys}
    wildcard = by_name.get(ANY_KEY)
    return {
        name: _convert(value, spec) if (spec := by_name.get(name, wildcard)) else value
        for name, value in params.items()
    }


def _convert(value: Any, spec: KeySpec) -> Any:
    if spec.type == "data" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    if spec.type == "date" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return value
    if spec.type == "dictionary" and isinstance(value, dict) and spec.subkeys:
        return from_json(value, spec.subkeys)
    if spec.type == "array" and isinstance(value, list) and len(spec.subkeys) == 1:
        return [_convert(item, spec.subkeys[0]) for item in value]
    return value


def to_json(value: Any) -> Any:
    """A plist value as JSON-ready data."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # A plist <real> may be nan or inf; JSON cannot say so (PostgreSQL refuses the
        # NaN token Python would write), so they travel as "nan", "inf", "-inf".
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value
