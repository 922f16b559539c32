"""docs/configuration.md's table of settings, generated from the settings model.

    python -m orchardist.config_docs            # rewrite the table in docs/configuration.md
    python -m orchardist.config_docs --check    # exit 1 when it is out of date

Each row comes from a field: its TOML key, environment variable, type, default, description
and when a change takes effect (`json_schema_extra={"applies": ...}`, else "restart to
apply"). A field added to the model appears here on the next run; a test fails until then.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from orchardist.config import RESTART, Settings
from orchardist.config_check import environment_name, setting_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = (
    "<!-- BEGIN settings: generated from src/orchardist/config.py by "
    "`python -m orchardist.config_docs`; edit the model, not this table -->"
)
END = "<!-- END settings -->"
HEADER = (
    "| setting (orchardist.toml) | environment | type | default | meaning | takes effect |\n"
    "|---|---|---|---|---|---|"
)


def render_table(model: type[BaseModel] = Settings) -> str:
    """The generated block, markers included."""
    rows = [_row(path, field) for path, field in setting_fields(model)]
    return "\n".join([BEGIN, HEADER, *rows, END])


def _row(path: str, field: FieldInfo) -> str:
    table, _, key = path.rpartition(".")
    setting = f"`[{table}]` `{key}`" if table else f"`{key}`"
    environment = f"`{environment_name(path)}`"
    if _is_structured(field.annotation):
        environment += " (JSON)"
    cells = [
        setting,
        environment,
        _type_name(field.annotation),
        _default(field),
        field.description or "",
        _applies(field),
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _applies(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    when = extra.get("applies") if isinstance(extra, dict) else None
    return str(when) if when else RESTART


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    if isinstance(value, BaseModel):
        return "each key's default"  # the rows below give them
    if isinstance(value, Enum):
        value = value.value
    return f"`{value}`"


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if _is_union(annotation):
        return " or ".join(_type_name(a) for a in args)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {int: "integer", float: "number", str: "text", bool: "boolean", Path: "path"}
    if annotation is SecretStr:
        return "secret text"
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _is_union(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union


def _is_structured(annotation: Any) -> bool:
    """Values pydantic-settings reads from the environment as JSON: lists, tables."""
    if _is_union(annotation):
        return any(_is_structured(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) in (list, tuple, set, frozenset, dict):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def updated(document: str, table: str) -> str:
    """`document` with its generated block replaced by `table`."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing: put {BEGIN!r} and {END!r} in the document")
    return document[:start] + table + document[end + len(END) :]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [arg for arg in argv if arg != "--check"]
    doc = Path(paths[0]) if paths else DOC
    current = doc.read_text(encoding="utf-8")
    fresh = updated(current, render_table())
    if current == fresh:
        return 0
    if check:
        print(f"{doc} is out of date: run python -m orchardist.config_docs", file=sys.stderr)
        return 1
    doc.write_text(fresh, encoding="utf-8")
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
