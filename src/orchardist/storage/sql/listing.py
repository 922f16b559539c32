"""The device list on SQL (see `orchardist.storage.listing`): one query per page.

Each sort orders by (value, device_id) with devices lacking the value after the rest, and
descending is the exact reverse; an index on (value, device_id) serves both directions on
PostgreSQL (migration 0015). A page starts after the previous page's last (value, UDID):
a range on that index, not an OFFSET that reads every row before it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, and_, or_, select
from sqlalchemy.engine import Connection

from orchardist.os_versions import key_range
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance
from orchardist.storage.listing import (
    DeviceFilters,
    DevicePage,
    DeviceSort,
    ListedDevice,
    Position,
    SortValue,
)
from orchardist.storage.sql.compliance import compliance_from_row
from orchardist.storage.sql.database import Database
from orchardist.storage.sql.mdm import enrollment_from_row
from orchardist.storage.sql.tables import (
    device_compliance,
    device_groups,
    enrollments,
    ota_sessions,
)

_e, _v = enrollments.c, device_compliance.c
_SORTS: dict[DeviceSort, Any] = {
    DeviceSort.UDID: _e.device_id,
    DeviceSort.NAME: _e.device_name,
    DeviceSort.SERIAL: _e.serial_number,
    DeviceSort.OS_VERSION: _e.os_version_key,
    DeviceSort.LAST_SEEN: _e.last_seen_at,
    DeviceSort.ENROLLED_AT: _e.enrolled_at,
}
# The verdict's columns, labelled apart from the enrollment's (both have device_id).
_VERDICT = [column.label(f"verdict_{column.name}") for column in device_compliance.c]


class SqlDeviceListing:
    database: Database

    async def list_devices(
        self,
        filters: DeviceFilters,
        *,
        sort: DeviceSort = DeviceSort.UDID,
        descending: bool = False,
        after: Position | None = None,
        limit: int = 100,
    ) -> DevicePage:
        column = _SORTS[sort]
        query = (
            select(enrollments, *_VERDICT)
            .select_from(enrollments.outerjoin(device_compliance, _v.device_id == _e.device_id))
            .where(*matching(filters))
            .order_by(*_order(column, descending))
            .limit(limit + 1)  # one more: is there a next page?
        )
        if after is not None:
            query = query.where(_after(column, descending, after))

        def work(conn: Connection) -> list[Row[Any]]:
            return list(conn.execute(query).all())

        rows = await self.database.read(work)
        page = rows[:limit]
        more = len(rows) > limit and bool(page)
        last = page[-1] if more else None
        return DevicePage(
            devices=tuple(ListedDevice(enrollment_from_row(r), _verdict(r)) for r in page),
            next=None if last is None else Position(last._mapping[column], last.device_id),
        )


def matching(filters: DeviceFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters` over enrollments outer-joined to their verdicts."""
    found: list[ColumnElement[bool]] = []
    if filters.search:
        found.append(_search(filters.search))
    if filters.model:
        found.append(or_(*(c == filters.model for c in (_e.product_name, _e.model_name, _e.model))))
    if filters.os_version:
        low, high = key_range(filters.os_version)
        found.append(_e.os_version_key.between(low, high))
    if filters.group:
        members = select(device_groups.c.device_id).where(device_groups.c.name == filters.group)
        found.append(_e.device_id.in_(members))
    if filters.compliance is not None:
        found.append(_status(filters.compliance))
    if filters.enrolled_by:
        found.append(_e.device_id.in_(_enrolled_by(ota_sessions.c.user == filters.enrolled_by)))
    if filters.seen_before is not None:
        found.append(_e.last_seen_at < filters.seen_before)
    if filters.seen_after is not None:
        found.append(_e.last_seen_at >= filters.seen_after)
    if filters.state:
        found.append(_state(filters.state))
    return found


def _search(text: str) -> ColumnElement[bool]:
    """Name contains it; serial, UDID or the enrolling user's name start with it; any case."""
    return or_(
        _e.device_name.icontains(text, autoescape=True),
        _e.serial_number.istartswith(text, autoescape=True),
        _e.device_id.istartswith(text, autoescape=True),
        _e.device_id.in_(_enrolled_by(ota_sessions.c.user.istartswith(text, autoescape=True))),
    )


def _enrolled_by(user: ColumnElement[bool]) -> Any:
    sessions = ota_sessions.c
    return select(sessions.device_id).where(sessions.phase == "enrolled", user)


def _status(status: ComplianceStatus) -> ColumnElement[bool]:
    if status == ComplianceStatus.UNKNOWN:  # never evaluated is unknown too
        return or_(_v.status.is_(None), _v.status == status.value)
    return _v.status == status.value


def _state(state: str) -> ColumnElement[bool]:
    if state == "enrolled":
        return and_(_e.ended_by.is_(None), _e.enrolled.is_(True))
    if state == "authenticated":
        return and_(_e.ended_by.is_(None), _e.enrolled.is_(False))
    return _e.ended_by == state


def _order(column: Any, descending: bool) -> list[Any]:
    if column is _e.device_id:
        return [column.desc() if descending else column.asc()]
    if descending:
        return [column.desc().nulls_first(), _e.device_id.desc()]
    return [column.asc().nulls_last(), _e.device_id.asc()]


def _after(column: Any, descending: bool, position: Position) -> ColumnElement[bool]:
    """Rows after `position` in the order `_order` gives."""
    value: SortValue = position.value
    last = position.device_id
    if column is _e.device_id:
        return column < last if descending else column > last
    if not descending:
        if value is None:  # in the devices without a value, which come last
            return and_(column.is_(None), _e.device_id > last)
        beyond = or_(column > value, and_(column == value, _e.device_id > last))
        return or_(beyond, column.is_(None))
    if value is None:  # the devices without a value came first
        return or_(column.is_not(None), and_(column.is_(None), _e.device_id < last))
    return or_(column < value, and_(column == value, _e.device_id < last))


def _verdict(row: Row[Any]) -> DeviceCompliance | None:
    if row._mapping["verdict_device_id"] is None:
        return None
    return compliance_from_row(row, prefix="verdict_")
