"""The profile builder's payloads as widgets to draw (templates/builder_fields.html).

Every key of a payload's form (`orchardist.profiles.forms`, compiled from Apple's schema)
becomes an input of its kind: text (a password input for passwords and secrets), a number
with its range, a select for allowed values and for booleans (so "not set" differs from
"no"), a textarea for lists (one value a line) and base64 data. Its title is the label;
help, default, range, "required" and "supervised only" its description; the problems
found at its key path are beside it. Dictionaries nest; an array of dictionaries shows its
items plus one empty item to fill in. Keys a form cannot express (lists of lists,
free-form dictionaries) are named with where to set them instead.

A widget's name is its form field's name and its element's id: `p0.SSID_STR` (see
`builder_draft`). No web framework here: a draft in, widgets out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from orchardist.profiles.forms import FormField, PayloadForm, item_fields, payload_forms
from orchardist.web.console.builder_draft import Draft

MAX_ITEMS = 50  # items of one array of dictionaries
ANY_KEY = "ANY"  # Apple's name for "any other key" in a free-form dictionary
ELSEWHERE = (
    "cannot be set in the builder: write it in a profile spec (orchardist profile build) "
    "and upload the .mobileconfig"
)
_SECRET = re.compile(r"password|secret", re.IGNORECASE)


@dataclass(frozen=True)
class Widget:
    # text, password, number, date, select, textarea; group (a dictionary), items (an
    # array of dictionaries) and item (one of them); elsewhere (not settable here)
    kind: str
    name: str  # the form field's name and the element's id
    key: str
    label: str  # the key's title: what the label shows
    # the dictionaries it is inside ("EAP Client Configuration: "): said by screen readers
    # before the label, so that two keys with one title ("Password") differ
    within: str = ""
    help: str = ""
    value: str = ""
    placeholder: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (value, text)
    minimum: str = ""  # a number input's range, as its attributes say it
    maximum: str = ""
    step: str = ""
    required: bool = False
    supervised: bool = False
    problems: tuple[str, ...] = ()
    children: tuple[Widget, ...] = ()
    filled: bool = False  # something inside is set or wrong: its <details> opens


@dataclass(frozen=True)
class PayloadSection:
    index: int
    form: PayloadForm
    widgets: tuple[Widget, ...]
    problems: tuple[str, ...]  # about the payload as a whole


def payload_sections(draft: Draft, problems: Mapping[str, list[str]]) -> list[PayloadSection]:
    forms = payload_forms()
    sections = []
    for index, payload in enumerate(draft.payloads):
        context = _Context(f"p{index}", payload.values, problems)
        form = forms[payload.payload_type]
        widgets = _widgets(form.fields, "", context)
        sections.append(PayloadSection(index, form, widgets, tuple(problems.get(f"p{index}", ()))))
    return sections


@dataclass(frozen=True)
class _Context:
    prefix: str  # p0
    values: Mapping[str, str]  # key path → text, as posted
    problems: Mapping[str, list[str]]

    def problems_at(self, name: str, *, inside_list: bool = False) -> tuple[str, ...]:
        found = list(self.problems.get(name, ()))
        if inside_list:  # a list's items: p0.AcceptEAPTypes[1]
            for other, messages in self.problems.items():
                if other.startswith(name + "["):
                    found += [f"{other.removeprefix(name)}: {m}" for m in messages]
        return tuple(found)


def _widgets(
    fields: Sequence[FormField], base: str, context: _Context, within: str = ""
) -> tuple[Widget, ...]:
    drawn = [_widget(f, f"{base}.{f.key}" if base else f.key, context, within) for f in fields
             if f.key != ANY_KEY]  # fmt: skip
    if any(f.key == ANY_KEY for f in fields):
        name = f"{context.prefix}.{base}.{ANY_KEY}" if base else f"{context.prefix}.{ANY_KEY}"
        drawn.append(
            Widget("elsewhere", name, ANY_KEY, "Other keys", help=f"Other keys {ELSEWHERE}.")
        )
    return tuple(drawn)


def _widget(spec: FormField, path: str, context: _Context, within: str) -> Widget:
    name = f"{context.prefix}.{path}"
    base = Widget("text", name, spec.key, spec.title, within=within, help=spec.help,
                  required=spec.required, supervised=spec.supervised,
                  problems=context.problems_at(name))  # fmt: skip
    if spec.type == "dictionary":
        return _group(spec, path, base, context)
    if spec.type == "array":
        return _array(spec, path, base, context)
    value = context.values.get(path, "")
    shown = replace(base, value=value, filled=bool(value.strip() or base.problems))
    if spec.type == "boolean":
        choices: tuple[tuple[str, str], ...] = (("true", "yes"), ("false", "no"))
        return replace(shown, kind="select", options=_options(spec, choices, value))
    if spec.values is not None:
        choices = tuple((str(v), str(v)) for v in spec.values)
        return replace(shown, kind="select", options=_options(spec, choices, value))
    if spec.type in ("integer", "real"):
        return replace(shown, kind="number", minimum=_number(spec.minimum),
                       maximum=_number(spec.maximum),
                       step="1" if spec.type == "integer" else "any",
                       placeholder=_default(spec.default))  # fmt: skip
    if spec.type == "data":
        return replace(shown, kind="textarea", help=f"{spec.help} (base64)".strip())
    if spec.type == "date":
        return replace(shown, kind="date", placeholder="2027-01-31T12:00:00Z")
    if spec.type == "any":
        return replace(base, kind="elsewhere", help=f"{spec.title} {ELSEWHERE}.")
    secret = _SECRET.search(spec.key) is not None
    return replace(shown, kind="password" if secret else "text", placeholder=_default(spec.default))


def _group(spec: FormField, path: str, base: Widget, context: _Context) -> Widget:
    if not any(f.key != ANY_KEY for f in spec.subfields):
        return replace(base, kind="elsewhere", help=f"{spec.title} {ELSEWHERE}.")
    children = _widgets(spec.subfields, path, context, f"{base.within}{spec.title}: ")
    return replace(base, kind="group", children=children, filled=_filled(base, children))


def _array(spec: FormField, path: str, base: Widget, context: _Context) -> Widget:
    item = spec.subfields[0] if len(spec.subfields) == 1 else None
    if item is not None and item.type == "dictionary" and item_fields(spec):
        count = _item_count(path, context)
        items = tuple(_item(spec, path, n, context, base.within) for n in range(count))
        return replace(base, kind="items", children=items, filled=_filled(base, items))
    if item is None or item.type not in ("string", "integer", "real", "data", "date"):
        return replace(base, kind="elsewhere", help=f"{spec.title} {ELSEWHERE}.")
    value = context.values.get(path, "")
    problems = context.problems_at(base.name, inside_list=True)
    allowed = f" Allowed: {', '.join(str(v) for v in item.values)}." if item.values else ""
    note = f"{spec.help} One {'base64 value' if item.type == 'data' else 'value'} a line.{allowed}"
    return replace(base, kind="textarea", value=value, help=note.strip(), problems=problems,
                   filled=bool(value.strip() or problems))  # fmt: skip


def _item(spec: FormField, path: str, position: int, context: _Context, within: str) -> Widget:
    item_path = f"{path}[{position}]"
    name = f"{context.prefix}.{item_path}"
    trail = f"{within}{spec.title} item {position + 1}: "
    children = _widgets(item_fields(spec), item_path, context, trail)
    problems = context.problems_at(name)
    return Widget("item", name, f"{spec.key}[{position}]", f"Item {position + 1}",
                  problems=problems, children=children,
                  filled=bool(problems) or any(c.filled for c in children))  # fmt: skip


def _item_count(path: str, context: _Context) -> int:
    """The items filled in (up to the last one with a value) and one empty one more."""
    pattern = re.compile(re.escape(path) + r"\[(\d{1,3})\]\.")
    used = [
        int(found[1])
        for key, text in context.values.items()
        if text.strip() and (found := pattern.match(key)) is not None
    ]
    return min(max(used, default=-1) + 2, MAX_ITEMS)


def _filled(base: Widget, children: Sequence[Widget]) -> bool:
    return bool(base.problems) or any(c.filled for c in children)


def _options(
    spec: FormField, choices: tuple[tuple[str, str], ...], value: str
) -> tuple[tuple[str, str], ...]:
    """ "not set" first (saying the default), the allowed values, and a posted value that
    is none of them (shown, so the problem it causes can be seen and fixed)."""
    unset = (
        f"not set (default: {_default(spec.default)})" if spec.default is not None else "not set"
    )
    known = {v for v, _ in choices}
    stray = ((value, f"{value} (not allowed)"),) if value.strip() and value not in known else ()
    return (("", unset), *choices, *stray)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _default(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
