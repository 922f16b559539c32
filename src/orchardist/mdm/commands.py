"""MDM commands: any RequestType in Apple's schema, checked against it before it is queued.

A command travels as `{"CommandUUID": …, "Command": {"RequestType": …, **params}}`
(Apple, "Commands and queries"); the device answers with the same CommandUUID.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchardist.schema.validate import Problem, mdm_schema, validate_dictionary


class CommandError(ValueError):
    """Parameters the schema refuses. `key` is the path of the first bad key (for a 422)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        self.key = problems[0].path
        super().__init__("; ".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class Command:
    request_type: str
    params: Mapping[str, Any]
    command_uuid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    def as_plist(self) -> dict[str, Any]:
        """The dictionary to send to the device (serialise with plistlib)."""
        return {
            "CommandUUID": self.command_uuid,
            "Command": {"RequestType": self.request_type, **self.params},
        }


def request_types() -> list[str]:
    return sorted(mdm_schema().commands)


def unknown_request_type(request_type: str) -> str:
    """The message for a RequestType Apple's schema lacks, naming the closest ones."""
    # Compared without case: `devicelock` is as likely a slip as `DeviceLok`.
    folded = {name.lower(): name for name in request_types()}
    close = [
        folded[name]
        for name in difflib.get_close_matches(request_type.lower(), list(folded), n=3, cutoff=0.6)
    ]
    if not close:
        return f"unknown RequestType {request_type!r}"
    names = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"unknown RequestType {request_type!r} (did you mean {names}?)"


def new_command(request_type: str, params: Mapping[str, Any] | None = None) -> Command:
    """A command with a fresh UUID, once its parameters pass Apple's schema for this
    RequestType; CommandError names every problem otherwise."""
    params = dict(params or {})
    schema = mdm_schema().commands.get(request_type)
    if schema is None:
        raise CommandError([Problem("request_type", unknown_request_type(request_type))])
    if "RequestType" in params:
        raise CommandError([Problem("RequestType", "is set from request_type, not a parameter")])
    problems = validate_dictionary(params, schema)
    if problems:
        raise CommandError(problems)
    return Command(request_type, params)
