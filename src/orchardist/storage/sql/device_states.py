"""Queries over the per-device state tables of the libraries (device_apps,
device_provisioning): one row per (device, item), with a state and the command in flight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, and_, func, select


def matching(table: Table, order: Sequence[str], filters: Mapping[str, Any]) -> Select[Any]:
    """The rows equal to every filter that is not None, in `order`."""
    query = select(table).order_by(*(table.c[name] for name in order))
    for name, value in filters.items():
        if value is not None:
            query = query.where(table.c[name] == value)
    return query


def by_command(table: Table, device_id: str, command_uuid: str) -> Select[Any]:
    """The device's row whose command in flight is `command_uuid`."""
    return select(table).where(
        and_(table.c.device_id == device_id, table.c.command_uuid == command_uuid)
    )


def state_counts(table: Table, key: str, value: str) -> Select[Any]:
    """(state, count) for the rows of one item."""
    return select(table.c.state, func.count()).where(table.c[key] == value).group_by(table.c.state)
