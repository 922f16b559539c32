"""Which devices a command is queued for (`CommandStore.enqueue_to`): every enrolled
device, the enrolled members of a static group, or devices named one by one.

The first two are resolved by the database in the statement that queues (INSERT … SELECT),
so a command to a million devices never brings a million device ids into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AllEnrolled:
    """Every device enrolled when the command is queued."""


@dataclass(frozen=True)
class InGroup:
    """The members of the static group `name` that are enrolled when it is queued."""

    name: str


@dataclass(frozen=True)
class Devices:
    """These devices, enrolled or not (the caller has checked that each is known);
    a device named twice is queued once."""

    device_ids: Sequence[str]


Scope = AllEnrolled | InGroup | Devices
