"""Settings errors an admin can act on: an unknown key or environment variable is named with
the closest real one ("did you mean …"), and a wrong value becomes one line saying which
setting, where it came from, what was expected and what was given — never a traceback.

The settings model (`orchardist.config`) is walked as it is, so a field added there is known
here without anything else to update.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

ENV_PREFIX = "ORCHARDIST_"
NESTED_DELIMITER = "__"


class SettingsError(ValueError):
    """Settings that cannot be used; the message is for the admin, one line per problem."""


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (`DirectorySettings | None` → DirectorySettings), if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def setting_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every setting with its dotted path: `hostname`, `directory`, `directory.url`, …"""
    for name, field in model.model_fields.items():
        yield prefix + name, field
        inner = nested_model(field.annotation)
        if inner is not None:
            yield from setting_fields(inner, f"{prefix}{name}.")


def setting_paths(model: type[BaseModel]) -> Iterator[str]:
    return (path for path, _ in setting_fields(model))


def environment_name(path: str) -> str:
    """`directory.url` → ORCHARDIST_DIRECTORY__URL (pydantic-settings' nested delimiter)."""
    return ENV_PREFIX + path.replace(".", NESTED_DELIMITER).upper()


def check_environment(
    model: type[BaseModel], environ: Mapping[str, str], allowed: frozenset[str]
) -> None:
    """Refuse ORCHARDIST_* variables that are neither settings nor in `allowed`: a typo would
    otherwise be ignored silently and the default used instead."""
    known = {environment_name(path) for path in setting_paths(model)} | allowed
    problems = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings matches names case-insensitively
        if upper.startswith(ENV_PREFIX) and upper not in known:
            problems.append(f"unknown environment variable {name}{_suggest(upper, known)}")
    if problems:
        raise SettingsError("\n".join(problems))


def check_file(model: type[BaseModel], values: Mapping[str, Any], path: Path) -> None:
    """Refuse keys in the TOML file that are not settings, nested tables included."""
    problems = [
        f"{path}: unknown setting '{key}'{_suggest(key, set(setting_paths(model)), quote=True)}"
        for key in _unknown_keys(model, values, "")
    ]
    if problems:
        raise SettingsError("\n".join(problems))


def _unknown_keys(model: type[BaseModel], values: Mapping[str, Any], prefix: str) -> list[str]:
    unknown = []
    for key, value in values.items():
        field = model.model_fields.get(key)
        if field is None:
            unknown.append(prefix + key)
            continue
        inner = nested_model(field.annotation)
        if inner is not None and isinstance(value, Mapping):
            unknown.extend(_unknown_keys(inner, value, f"{prefix}{key}."))
    return unknown


def _suggest(name: str, candidates: set[str] | frozenset[str], *, quote: bool = False) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    if not close:
        return " (not a setting: see docs/configuration.md)"
    return f" (did you mean '{close[0]}'?)" if quote else f" (did you mean {close[0]}?)"


def describe(
    error: ValidationError,
    model: type[BaseModel],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    path: Path,
) -> SettingsError:
    """One line per invalid value: the setting, where it came from, expected and given."""
    secrets = {p for p in setting_paths(model) if _is_secret(model, p)}
    lines = []
    for item in error.errors():
        dotted = ".".join(str(part) for part in item["loc"])
        source = _source(dotted, environ, file_values, path)
        if item["type"] == "missing":
            lines.append(f"setting {dotted} ({source}): required, but not given")
            continue
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown setting {dotted} ({source})")
            continue
        given = f"a {type(item['input']).__name__}" if dotted in secrets else _shown(item["input"])
        lines.append(f"setting {dotted} ({source}): expected {_expected(item['msg'])}, got {given}")
    return SettingsError("\n".join(lines))


def _source(
    dotted: str, environ: Mapping[str, str], file_values: Mapping[str, Any], path: Path
) -> str:
    upper_environ = {name.upper() for name in environ}
    parts = dotted.split(".")
    # The value may have come from the variable for this key or for any table above it
    # (ORCHARDIST_SMTP as JSON), or from the file.
    for depth in range(len(parts), 0, -1):
        name = environment_name(".".join(parts[:depth]))
        if name in upper_environ:
            return f"from {name}"
    if parts[0] in file_values:
        return f"from {path}"
    return "from the command line"


def _expected(message: str) -> str:
    text = message.removeprefix("Value error, ").removeprefix("Input should be ")
    if text.startswith(("greater", "less")):
        return f"a number {text}"
    return text[0].lower() + text[1:] if text else message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_secret(model: type[BaseModel], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    field = model.model_fields.get(head)
    if field is None:
        return False
    inner = nested_model(field.annotation)
    if rest:
        return inner is not None and _is_secret(inner, rest)
    return SecretStr in _flatten(field.annotation)


def _flatten(annotation: Any) -> set[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {leaf for arg in typing.get_args(annotation) for leaf in _flatten(arg)}
    return {annotation}
