"""What a device PUTs to the ServerURL: Idle, or the result of a command
(Acknowledged, Error, CommandFormatError, NotNow) with the query's answer."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchardist import bulk_threads
from orchardist.mdm.plist import device_id_of, enum_field
from orchardist.plists import PlistError, load_dictionary
from orchardist.schema.jsonvalues import to_json
from orchardist.storage.inventory import InventoryUpdate

_ENVELOPE = frozenset({"Status", "UDID", "EnrollmentID", "UserID", "CommandUUID", "ErrorChain"})


class ReportError(ValueError):
    """A report the server cannot act on; str(err) is the reason for the 400."""


class Status(enum.StrEnum):
    IDLE = "Idle"
    ACKNOWLEDGED = "Acknowledged"
    ERROR = "Error"
    COMMAND_FORMAT_ERROR = "CommandFormatError"
    NOT_NOW = "NotNow"


@dataclass(frozen=True)
class Report:
    status: Status
    device_id: str  # UDID, or the EnrollmentID of a User Enrollment
    user_id: str | None
    command_uuid: str | None  # None only when Idle
    error_chain: tuple[Mapping[str, Any], ...]
    result: Mapping[str, Any]  # everything but the envelope: the query's answer
    raw: bytes  # the report as the device sent it, kept as the command's result
    # The inventory by request type, when a worker process read the report (report_pool);
    # None: computed from `result` once the request type is known.
    inventories: Mapping[str, InventoryUpdate | None] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def is_result(self) -> bool:
        return self.status != Status.IDLE


def parse_report(body: bytes) -> Report:
    try:
        fields = load_dictionary(body)
        status = enum_field(fields, "Status", Status)
        device_id = device_id_of(fields)
    except PlistError as exc:
        raise ReportError(str(exc)) from exc
    command_uuid = _string(fields, "CommandUUID")
    if status != Status.IDLE and command_uuid is None:
        raise ReportError(f"a {status} report without CommandUUID")
    return Report(
        status=status,
        device_id=device_id,
        user_id=_string(fields, "UserID"),
        command_uuid=command_uuid,
        error_chain=_error_chain(fields),
        result={key: value for key, value in fields.items() if key not in _ENVELOPE},
        raw=body,
    )


# Above this size a report is parsed off the event loop: ~20 ms of parsing per megabyte
# would otherwise hold every other device's request up. The server has a worker process
# read it (report_pool); read_report uses a thread, which still takes the GIL but gives it
# back every switch interval and between chunks.
OFF_LOOP_BYTES = 256 * 1024


async def read_report(body: bytes) -> Report:
    """parse_report, off the event loop for a large body."""
    if len(body) < OFF_LOOP_BYTES:
        return parse_report(body)
    return await bulk_threads.run(parse_report, body)


def result_as_json(raw: bytes) -> dict[str, Any] | None:
    """A stored report (Report.raw) as JSON-ready data; None when it does not read, such as
    one stored before the parser bounded depth, which must not break every later listing."""
    try:
        readable: dict[str, Any] = to_json(load_dictionary(raw))
    except PlistError:
        return None
    return readable


def _string(fields: Mapping[str, Any], key: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ReportError(f"{key} must be a non-empty string")
    return value


def _error_chain(fields: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    chain = fields.get("ErrorChain", [])
    if not isinstance(chain, list) or not all(isinstance(item, dict) for item in chain):
        raise ReportError("ErrorChain must be an array of dictionaries")
    return tuple(chain)
