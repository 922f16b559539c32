"""Check-in messages (PUT to the CheckInURL), read into typed values.

Apple's check-in files mark as "required" keys that are really alternatives (UDID or
EnrollmentID; device or user channel), so only the types of the keys present are checked
against the schema, and what each message needs is decided here, from the protocol.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchardist.mdm.plist import device_id_of, enum_field
from orchardist.plists import PlistError, load_dictionary
from orchardist.schema.validate import mdm_schema, validate_dictionary


class CheckinError(ValueError):
    """A check-in the server cannot act on; str(err) is the reason for the 400."""


class MessageType(enum.StrEnum):
    AUTHENTICATE = "Authenticate"
    TOKEN_UPDATE = "TokenUpdate"
    CHECK_OUT = "CheckOut"
    USER_AUTHENTICATE = "UserAuthenticate"
    SET_BOOTSTRAP_TOKEN = "SetBootstrapToken"
    GET_BOOTSTRAP_TOKEN = "GetBootstrapToken"
    DECLARATIVE_MANAGEMENT = "DeclarativeManagement"
    GET_TOKEN = "GetToken"


# What each message cannot do without, beyond MessageType (Apple, "Check-in").
_NEEDS: Mapping[MessageType, tuple[str, ...]] = {
    MessageType.AUTHENTICATE: ("Topic",),
    MessageType.TOKEN_UPDATE: ("Topic", "Token", "PushMagic"),
    MessageType.CHECK_OUT: (),
    MessageType.USER_AUTHENTICATE: ("UserID",),
    MessageType.SET_BOOTSTRAP_TOKEN: (),
    MessageType.GET_BOOTSTRAP_TOKEN: (),
    MessageType.DECLARATIVE_MANAGEMENT: ("Endpoint",),
    MessageType.GET_TOKEN: ("TokenServiceType",),
}


@dataclass(frozen=True)
class Checkin:
    message_type: MessageType
    device_id: str  # the UDID, or the EnrollmentID of a User Enrollment
    user_id: str | None  # set on the user channel (macOS users, Shared iPad)
    fields: Mapping[str, Any]  # the whole message
    raw: bytes = field(default=b"", repr=False)  # as the device sent it (for webhooks)

    def get(self, key: str) -> Any:
        return self.fields.get(key)

    @property
    def token(self) -> bytes | None:
        """TokenUpdate: the APNs device token."""
        token = self.fields.get("Token")
        return token if isinstance(token, bytes) else None

    @property
    def push_magic(self) -> str | None:
        magic = self.fields.get("PushMagic")
        return magic if isinstance(magic, str) else None

    @property
    def unlock_token(self) -> bytes | None:
        """TokenUpdate: needed later by ClearPasscode; only some TokenUpdates carry it."""
        token = self.fields.get("UnlockToken")
        return token if isinstance(token, bytes) else None


def parse_checkin(body: bytes) -> Checkin:
    try:
        fields = load_dictionary(body)
        message_type = enum_field(fields, "MessageType", MessageType)
        device_id = device_id_of(fields)
    except PlistError as exc:
        raise CheckinError(str(exc)) from exc
    schema = mdm_schema().checkin[message_type.value]
    problems = validate_dictionary(fields, schema, strict=False, check_required=False)
    if problems:
        raise CheckinError(f"{message_type}: {problems[0]}")
    missing = [key for key in _NEEDS[message_type] if key not in fields]
    if missing:
        raise CheckinError(f"{message_type} without {', '.join(missing)}")
    return Checkin(message_type, device_id, _optional(fields, "UserID"), fields, body)


def _optional(fields: Mapping[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return value if isinstance(value, str) and value else None
