"""The profile builder's form read back: the draft a posted form holds (the profile's
identifier, name and organization, and its payloads' values by key path), a payload added
or removed, and the draft checked as Save would build it — problems each with its key path
(`payloads[1].SSID_STR: is required`), or the XML preview.

Field names: `identifier`, `name`, `organization`; `p<n>.type` holds payload n's
PayloadType and `p<n>.<key path>` its values (`p0.SSID_STR`,
`p0.EAPClientConfiguration.UserName`, `p1.Passwords[0].DeviceName`). `builder_widgets`
draws them. No web framework here: field pairs in, a draft out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchardist.profiles import envelope
from orchardist.profiles.builders import SpecError
from orchardist.profiles.forms import FormPayload, build_from_forms, payload_forms

MAX_PAYLOADS = 60
HEADER = ("identifier", "name", "organization")
HEADER_LENGTH = 255
_FIELD = re.compile(r"^p(?P<index>\d{1,3})\.(?P<path>.+)$")
_PROBLEM = re.compile(
    r"^(?:payloads|PayloadContent)\[(?P<index>\d+)\](?:\.(?P<path>[^:\s]+))?: (?P<message>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Draft:
    """The profile being built, as the form holds it (text, not yet checked)."""

    identifier: str = ""
    name: str = ""
    organization: str = ""
    payloads: tuple[FormPayload, ...] = ()


@dataclass(frozen=True)
class Checked:
    problems: tuple[str, ...]  # each with its key path: payloads[0].SSID_STR: is required
    preview: str | None  # the unsigned .mobileconfig as it would be stored (XML)
    profile: dict[str, Any] | None


def read_draft(pairs: Iterable[tuple[str, object]]) -> tuple[Draft, list[str]]:
    """The draft a posted form holds, and what was left out of it (and why)."""
    header: dict[str, str] = {}
    types: dict[int, str] = {}
    values: dict[int, dict[str, str]] = {}
    for name, value in pairs:
        if not isinstance(value, str):
            continue
        if name in HEADER:
            header[name] = value.strip()[:HEADER_LENGTH]
            continue
        matched = _FIELD.match(name)
        if matched is None:
            continue
        index, path = int(matched["index"]), matched["path"]
        if path == "type":
            types[index] = value
        else:
            values.setdefault(index, {})[path] = value
    left_out: list[str] = []
    payloads: list[FormPayload] = []
    for index in sorted(types):
        kind = types[index]
        if kind not in payload_forms():
            left_out.append(f"{kind[:80]!r} is not an iOS payload type: left out")
        elif len(payloads) >= MAX_PAYLOADS:
            left_out.append(f"a profile holds at most {MAX_PAYLOADS} payloads here: rest left out")
            break
        else:
            payloads.append(FormPayload(kind, values.get(index, {})))
    return Draft(payloads=tuple(payloads), **header), left_out


def add_payload(draft: Draft, payload_type: str) -> tuple[Draft, str | None]:
    """The draft with an empty payload of this type at the end, or why not."""
    form = payload_forms().get(payload_type)
    if form is None:
        return draft, "Choose a payload type from the list."
    if len(draft.payloads) >= MAX_PAYLOADS:
        return draft, f"A profile holds at most {MAX_PAYLOADS} payloads here."
    if not form.multiple and any(p.payload_type == payload_type for p in draft.payloads):
        return draft, f"A profile holds one {form.title} payload: it has one already."
    return replace(draft, payloads=(*draft.payloads, FormPayload(payload_type, {}))), None


def remove_payload(draft: Draft, index: int) -> Draft:
    kept = tuple(p for n, p in enumerate(draft.payloads) if n != index)
    return replace(draft, payloads=kept)


def check_draft(draft: Draft) -> Checked:
    """Build the profile as Save would and check it against Apple's schema."""
    missing = []
    if not draft.identifier:
        missing.append("identifier: required, e.g. com.example.office")
    if not draft.payloads:
        missing.append("payloads: add at least one payload")
    if missing:
        return Checked(tuple(missing), None, None)
    try:
        profile = build_from_forms(draft.identifier, draft.name, draft.organization, draft.payloads)
    except SpecError as exc:
        return Checked(tuple(_readable(p) for p in exc.problems), None, None)
    return Checked((), envelope.serialize(profile).decode("utf-8"), profile)


def _readable(problem: str) -> str:
    # The schema names the built profile's keys (PayloadContent[0]); the form's own
    # problems name the form's (payloads[0]). One name for both: the form's.
    return re.sub(r"^PayloadContent\[", "payloads[", problem)


def problems_by_field(problems: Sequence[str]) -> dict[str, list[str]]:
    """Each problem's message under the field it is about (`p0.SSID_STR`, `p0` for the
    payload as a whole, `identifier`…); the problems list shows them all regardless."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        matched = _PROBLEM.match(problem)
        if matched is not None:
            name = f"p{matched['index']}"
            if matched["path"]:
                name += f".{matched['path']}"
            found.setdefault(name, []).append(matched["message"])
            continue
        head, _, message = problem.partition(": ")
        if head in HEADER:
            found.setdefault(head, []).append(message)
    return found


def problem_anchor(problem: str) -> str | None:
    """The id of the field a problem is about, for a link from the problems list."""
    matched = _PROBLEM.match(problem)
    if matched is not None:
        path = re.sub(r"\[\d+\]$", "", matched["path"] or "")  # a list's item: the list
        return f"p{matched['index']}.{path}" if path else f"p{matched['index']}"
    head = problem.partition(": ")[0]
    return head if head in HEADER else None


def payload_choices() -> list[tuple[str, str]]:
    """(PayloadType, what the list shows) for every iOS payload type, by title."""
    return [
        (kind, f"{form.title} ({kind}){' — supervised only' if form.supervised else ''}")
        for kind, form in payload_forms().items()
    ]
