"""What may go into an audit entry: JSON values, bounded in size, and never a secret.

Callers are asked to put no secret in `detail`; this is the second line. A key named like a
secret (…Password, …Passcode, …Token, …Secret, …Challenge, PIN, …Key, link) keeps its place
with its value hidden, an API token is hidden wherever it appears, and bytes (a profile, an
UnlockToken) are only ever counted.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from orchardist.tokens import TOKEN_PREFIX

HIDDEN = "(hidden)"
MAX_TEXT = 500
MAX_ITEMS = 100
MAX_DEPTH = 6
TARGET_LENGTH = 255  # what storage keeps of a target
# Compared with the key lowercased and without separators: "wifi_password", "UnlockToken".
_SECRET_KEY = re.compile(
    r"(password|passcode|passphrase|secret|token|challenge|credentials?|pin|key|link)$"
)
_UNSTORABLE = re.compile("[\\x00\\ud800-\\udfff]")


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """Text every backend stores: no NUL, no lone surrogate (a CLI argument that was not
    UTF-8 arrives as one), at most `limit` characters."""
    return _UNSTORABLE.sub("\ufffd", text)[:limit]


def clean_targets(targets: Iterable[object]) -> tuple[str, ...]:
    return tuple(clean_text(str(target), TARGET_LENGTH) for target in targets)


def clean_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = _value(detail, 0)
    assert isinstance(cleaned, dict)
    return cleaned


def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(re.sub(r"[^a-z0-9]", "", key.lower())) is not None


def _value(value: Any, depth: int) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return HIDDEN if value.startswith(TOKEN_PREFIX) else clean_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"({len(value)} bytes)"
    if isinstance(value, datetime):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return "(nested too deep)"
    if isinstance(value, Mapping):
        return {
            clean_text(str(key)): HIDDEN if is_secret_key(str(key)) else _value(item, depth + 1)
            for key, item in list(value.items())[:MAX_ITEMS]
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = [_value(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            kept.append(f"(and {len(items) - MAX_ITEMS} more)")
        return kept
    return clean_text(str(value))


def command_detail(request_type: object, params: object) -> dict[str, Any]:
    """What an entry keeps of an MDM command: its RequestType and the names of its
    parameters, never their values (a PIN, an UnlockToken, a whole profile)."""
    names = sorted(str(key) for key in params) if isinstance(params, Mapping) else []
    return {"request_type": request_type, "params": names}
