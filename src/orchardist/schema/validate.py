"""Check plist values (dicts, lists, str, int, bool, bytes, datetime…) against Apple's schema.

Every problem names the key path it is about (`Settings[1].Enabled`), so an API client can
be told exactly which parameter to fix.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data") / "mdm.json"
ANY_KEY = "ANY"  # Apple's name for "a dictionary key of any name"

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "real": (int, float),
    "boolean": (bool,),
    "data": (bytes, bytearray),
    "date": (datetime,),
    "array": (list, tuple),
    "dictionary": (dict,),
}


@dataclass(frozen=True)
class KeySpec:
    key: str
    type: str
    required: bool = False
    values: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    subkeys: tuple[KeySpec, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> KeySpec:
        limits = raw.get("range", {})
        values = raw.get("values")
        return cls(
            key=raw["key"],
            type=raw["type"],
            required=raw.get("required", False),
            values=None if values is None else tuple(values),
            minimum=limits.get("min"),
            maximum=limits.get("max"),
            subkeys=tuple(cls.from_json(sub) for sub in raw.get("subkeys", ())),
        )


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class MdmSchema:
    source: str
    commands: Mapping[str, tuple[KeySpec, ...]]
    checkin: Mapping[str, tuple[KeySpec, ...]]
    profiles: Mapping[str, tuple[KeySpec, ...]]  # by PayloadType


@functools.cache
def mdm_schema() -> MdmSchema:
    """The compiled schema shipped in the package (read once)."""
    raw = json.loads(DATA.read_text(encoding="utf-8"))

    def section(name: str) -> dict[str, tuple[KeySpec, ...]]:
        return {
            entry: tuple(KeySpec.from_json(key) for key in body["keys"])
            for entry, body in raw[name].items()
        }

    return MdmSchema(raw["source"], section("commands"), section("checkin"), section("profiles"))


def validate_dictionary(
    value: Any,
    keys: Sequence[KeySpec],
    path: str = "",
    *,
    strict: bool = True,
    check_required: bool = True,
) -> list[Problem]:
    """Problems of a dictionary against its keys. `strict` refuses keys the schema lacks;
    `check_required` False checks only the keys that are there (for messages whose
    "required" flags in Apple's files describe alternatives, as check-ins do)."""
    if not isinstance(value, dict):
        return [Problem(path, f"must be a dictionary, not {_kind(value)}")]
    wildcard = next((spec for spec in keys if spec.key == ANY_KEY), None)
    by_name = {spec.key: spec for spec in keys if spec.key != ANY_KEY}
    problems = [
        Problem(_join(path, spec.key), "is required")
        for spec in by_name.values()
        if check_required and spec.required and spec.key not in value
    ]
    for name, item in value.items():
        if (unwritable := _unwritable(name)) is not None:
            problems.append(Problem(_join(path, repr(name)), f"the key {unwritable}"))
            continue
        spec = by_name.get(name, wildcard)
        if spec is None:
            if strict:
                problems.append(Problem(_join(path, str(name)), "is not a key Apple defines here"))
            continue
        problems.extend(validate_value(item, spec, _join(path, str(name))))
    return problems


def validate_value(value: Any, spec: KeySpec, path: str) -> list[Problem]:
    expected = _PYTHON_TYPES.get(spec.type)
    if expected is not None and (
        not isinstance(value, expected) or (isinstance(value, bool) and spec.type != "boolean")
    ):
        return [Problem(path, f"must be {_article(spec.type)}, not {_kind(value)}")]
    unwritable = _unwritable(value)
    if unwritable is not None:
        return [Problem(path, unwritable)]
    if spec.values is not None and value not in spec.values:
        allowed = ", ".join(repr(v) for v in spec.values[:12])
        return [Problem(path, f"{value!r} is not one of {allowed}")]
    if spec.minimum is not None and value < spec.minimum:
        return [Problem(path, f"must be at least {spec.minimum}")]
    if spec.maximum is not None and value > spec.maximum:
        return [Problem(path, f"must be at most {spec.maximum}")]
    if spec.type == "dictionary" and spec.subkeys:
        return validate_dictionary(value, spec.subkeys, path)
    if spec.type == "array" and spec.subkeys:
        problems: list[Problem] = []
        for index, item in enumerate(value):
            problems.extend(_validate_element(item, spec.subkeys, f"{path}[{index}]"))
        return problems
    return []


# What a plist can carry (plistlib refuses the rest when it writes a command): XML 1.0 has
# no control characters but tab, newline and return, UTF-8 no lone surrogates, and plist
# integers are 64-bit (signed, or unsigned up to 2^64 - 1).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _unwritable(value: Any) -> str | None:
    if isinstance(value, str) and (found := _CONTROL.search(value)):
        return f"holds U+{ord(found.group()):04X}, which a plist cannot carry"
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return "is outside the 64-bit range of a plist integer"
    return None


def _validate_element(item: Any, alternatives: Sequence[KeySpec], path: str) -> list[Problem]:
    """An array element against its spec; several specs are alternatives (the Settings
    command's items), told apart by a required key with one allowed value (`Item`)."""
    if len(alternatives) == 1:
        return validate_value(item, alternatives[0], path)
    for spec in alternatives:
        if _discriminated(item, spec):
            return validate_value(item, spec, path)
    attempts = [validate_value(item, spec, path) for spec in alternatives]
    if any(not problems for problems in attempts):
        return []
    names = ", ".join(spec.key for spec in alternatives[:12])
    return [Problem(path, f"matches none of the allowed forms ({names})")]


def _discriminated(item: Any, spec: KeySpec) -> bool:
    if not isinstance(item, dict):
        return False
    return any(
        sub.required and sub.values is not None and len(sub.values) == 1
        and item.get(sub.key) == sub.values[0]
        for sub in spec.subkeys
    )  # fmt: skip


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _article(type_name: str) -> str:
    if type_name == "data":
        return "data"
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _kind(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "integer", float: "real", bytes: "data",
             dict: "dictionary", list: "array", type(None): "nothing"}  # fmt: skip
    return names.get(type(value), type(value).__name__)
