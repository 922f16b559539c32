"""Secrets written into a spec in plain text: found, so the admin is told to move them to
`{ env = "NAME" }` or `{ file = "path" }` (docs/profiles.md).

Apple's schema does not mark keys as secret, but it names them plainly: every key of type
string or data whose name ends in Password, Secret, Passphrase or Challenge (Password,
UserPassword, SharedSecret, the SCEP Challenge, the APN's password…) is one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from orchardist.schema.validate import KeySpec, mdm_schema

_SECRET_NAME = re.compile(r"(password|secret|passphrase|challenge)$", re.IGNORECASE)


@functools.cache
def secret_keys() -> frozenset[str]:
    """The names of every secret key in Apple's profile schema, at any depth."""
    found: set[str] = set()

    def walk(specs: Iterable[KeySpec]) -> None:
        for spec in specs:
            if spec.type in ("string", "data") and _SECRET_NAME.search(spec.key):
                found.add(spec.key)
            walk(spec.subkeys)

    for specs in mdm_schema().profiles.values():
        walk(specs)
    return frozenset(found)


def plaintext_secrets(spec: Mapping[str, Any]) -> list[str]:
    """A warning for each secret written as a value in the spec's payloads (never the
    value itself: the warning names the key path)."""
    paths: list[str] = []
    entries = spec.get("payloads")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        _walk(entry, f"payloads[{index}]", paths)
    return [
        f'{path}: a secret written in the spec; use {{ env = "NAME" }} or {{ file = "path" }} '
        "so it stays out of the file (and out of version control)"
        for path in paths
    ]


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if key in secret_keys() and isinstance(item, str) and item:
                found.append(here)
            else:
                _walk(item, here, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found)
