"""The profile builder's forms: every iOS payload type of Apple's schema as fields (type,
title, help, default, allowed values, range, nested keys), and submitted form values back
into a spec that `spec.build_profile` builds and checks like a TOML spec.

Field names are key paths: `SSID_STR`, `EAPClientConfiguration.UserName`,
`EAPClientConfiguration.AcceptEAPTypes` (an array of scalars: one value per line),
`Settings[0].Item` (an array of dictionaries). Values arrive as text, as an HTML form sends
them; an empty value means "not set". The compiled forms come from Apple's YAML
(`schema/forms_generate.py`); this module imports neither the web framework nor storage.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchardist.profiles.builders import SpecError
from orchardist.profiles.spec import build_profile

DATA = Path(__file__).resolve().parents[1] / "schema" / "data" / "profile_forms.json"
_INDEX = re.compile(r"^(?P<key>[^\[\]]+)\[(?P<index>\d{1,3})\]$")
_TRUE, _FALSE = {"true", "on", "yes", "1"}, {"false", "off", "no", "0"}


@dataclass(frozen=True)
class FormField:
    key: str
    type: str  # string, integer, real, boolean, data, date, array, dictionary, any
    title: str
    help: str
    required: bool = False
    default: Any = None
    values: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    supervised: bool = False  # only on supervised devices
    subfields: tuple[FormField, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FormField:
        limits = raw.get("range", {})
        values = raw.get("values")
        return cls(
            key=raw["key"],
            type=raw["type"],
            title=raw["title"],
            help=raw["help"],
            required=raw.get("required", False),
            default=raw.get("default"),
            values=None if values is None else tuple(values),
            minimum=limits.get("min"),
            maximum=limits.get("max"),
            supervised=raw.get("supervised", False),
            subfields=tuple(cls.from_json(sub) for sub in raw.get("subkeys", ())),
        )


@dataclass(frozen=True)
class PayloadForm:
    payload_type: str
    title: str
    description: str
    introduced: str  # the iOS version that brought it
    multiple: bool  # several of this payload in one profile
    supervised: bool
    fields: tuple[FormField, ...]


@functools.cache
def payload_forms() -> Mapping[str, PayloadForm]:
    """Every iOS payload type, by PayloadType, sorted by title."""
    raw = json.loads(DATA.read_text(encoding="utf-8"))["payloads"]
    forms = {
        payload_type: PayloadForm(
            payload_type=payload_type,
            title=entry["title"],
            description=entry["description"],
            introduced=entry["introduced"],
            multiple=entry["multiple"],
            supervised=entry["supervised"],
            fields=tuple(FormField.from_json(key) for key in entry["keys"]),
        )
        for payload_type, entry in raw.items()
    }
    return dict(sorted(forms.items(), key=lambda item: item[1].title.lower()))


@dataclass(frozen=True)
class FormPayload:
    payload_type: str
    values: Mapping[str, str]  # key path → text, as submitted


def spec_from_forms(
    identifier: str, name: str, organization: str, payloads: Sequence[FormPayload]
) -> tuple[dict[str, Any], list[str]]:
    """The spec the forms describe, and the problems met reading the text (a number that
    is not one, a bad base64…), each with its key path."""
    problems: list[str] = []
    entries = []
    for index, payload in enumerate(payloads):
        form = payload_forms().get(payload.payload_type)
        if form is None:
            problems.append(f"payloads[{index}]: {payload.payload_type} is not an iOS payload")
            continue
        entry: dict[str, Any] = {"type": payload.payload_type}
        for path, text in payload.values.items():
            if not text.strip():
                continue
            try:
                _place(entry, form.fields, path, text)
            except ValueError as exc:
                problems.append(f"payloads[{index}].{path}: {exc}")
        entries.append(entry)
    spec: dict[str, Any] = {"identifier": identifier, "payloads": entries}
    if name:
        spec["name"] = name
    if organization:
        spec["organization"] = organization
    return spec, problems


def build_from_forms(
    identifier: str, name: str, organization: str, payloads: Sequence[FormPayload]
) -> dict[str, Any]:
    """The profile, checked against Apple's schema; SpecError listing every problem with
    its key path (live validation shows them beside the form)."""
    spec, problems = spec_from_forms(identifier, name, organization, payloads)
    if problems:
        raise SpecError("; ".join(problems[:20]), problems)
    # No files and no environment here: what the form holds is the whole profile.
    return build_profile(spec, base_dir=Path("/nonexistent"), env={})


def _place(entry: dict[str, Any], fields: Sequence[FormField], path: str, text: str) -> None:
    """Put `text`, converted to its field's type, at `path` inside `entry`."""
    parts = path.split(".")
    target: dict[str, Any] = entry
    level = fields
    for depth, part in enumerate(parts):
        indexed = _INDEX.match(part)
        key = indexed["key"] if indexed else part
        field = next((f for f in level if f.key == key), None)
        if field is None:
            raise ValueError(f"{key} is not a key of this payload")
        last = depth == len(parts) - 1
        if indexed:  # an array of dictionaries: Settings[0].Item
            items = target.setdefault(key, [])
            position = int(indexed["index"])
            while len(items) <= position:
                items.append({})
            target, level = items[position], item_fields(field)
            if last:
                raise ValueError("name a key inside the item")
        elif last:
            target[key] = _convert(field, text)
        else:
            target = target.setdefault(key, {})
            level = field.subfields


def item_fields(field: FormField) -> tuple[FormField, ...]:
    """The keys of one item of an array of dictionaries (the builder draws them too)."""
    # Apple writes an array's item as its one subkey; a dictionary item has its own keys.
    if len(field.subfields) == 1 and field.subfields[0].type == "dictionary":
        return field.subfields[0].subfields
    return field.subfields


def _convert(field: FormField, text: str) -> Any:
    if field.type == "array":
        item = field.subfields[0] if field.subfields else None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return [_scalar(item.type if item else "string", line) for line in lines]
    return _scalar(field.type, text.strip())


def _scalar(kind: str, text: str) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a whole number") from None
    if kind == "real":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a number") from None
    if kind == "boolean":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError("must be true or false")
    if kind == "data":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (paste a certificate's base64)") from None
    if kind == "date":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be a date such as 2027-01-31T12:00:00Z") from None
    return text
