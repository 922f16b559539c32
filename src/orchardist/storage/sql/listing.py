"""The device list on SQL (see `orchardist.storage.listing`): a page is one or two index
ranges.

Each sort orders by (value, device_id) with devices lacking the value after the rest, and
descending is the exact reverse; an index on (value, device_id) serves both directions
(migration 0015). A page starts after the previous page's last (value, UDID): a range on
that index, not an OFFSET that reads every row before it.

A search is looked up first, one way of matching at a time: on PostgreSQL each through its
own index (migration 0018), and when it finds few devices the page is cut from those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, String, and_, func, or_, select, text, true
from sqlalchemy.engine import Connection

from orchardist.os_versions import key_range
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance
from orchardist.storage.listing import (
    DeviceFilters,
    DevicePage,
    DeviceSort,
    ListedDevice,
    Position,
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
# A search that finds at most this many devices is paged from them (see _narrowed).
CANDIDATES = 5000
# A plan for the very text searched for, not a generic one PostgreSQL may settle on for a
# prepared statement after a few runs: an index range for "starts with" needs the pattern
# itself, which a generic plan does not have (it would read every device instead).
_PLAN_EACH_SEARCH = text("SET LOCAL plan_cache_mode = force_custom_plan")


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

        def work(conn: Connection) -> list[Row[Any]]:
            search = filters.search
            conditions = _narrowed(conn, search, filters) if search else matching(filters)
            rows: list[Row[Any]] = []
            # One more than a page: is there a next one?
            for where, order in _segments(column, descending, after):
                query = _listed().where(*conditions, where).order_by(*order)
                rows += conn.execute(query.limit(limit + 1 - len(rows))).all()
                if len(rows) > limit:
                    break
            return rows

        # In a transaction (write commits nothing here): a search's SET LOCAL lasts until it
        # ends, and reads run without one.
        rows = await self.database.write(work)
        page = rows[:limit]
        last = page[-1] if len(rows) > limit and page else None
        return DevicePage(
            devices=tuple(ListedDevice(enrollment_from_row(r), _verdict(r)) for r in page),
            next=None if last is None else Position(last._mapping[column], last.device_id),
        )

    async def device_ids_by_serial(self, serials: Sequence[str]) -> Mapping[str, list[str]]:
        wanted = {form: serial for serial in serials for form in (serial, serial.upper())}
        query = (
            select(_e.serial_number, _e.device_id)
            .where(_e.serial_number.in_(list(wanted)))  # ix_enrollments_serial_number
            .order_by(_e.device_id)
        )
        rows = await self.database.read(lambda conn: conn.execute(query).all()) if wanted else []
        found: dict[str, list[str]] = {}
        for row in rows:
            udids = found.setdefault(wanted[row.serial_number], [])
            if row.device_id not in udids:
                udids.append(row.device_id)
        return found


def _listed() -> Any:
    """Enrollments with their verdicts (labelled apart: both have device_id)."""
    joined = enrollments.outerjoin(device_compliance, _v.device_id == _e.device_id)
    return select(enrollments, *_VERDICT).select_from(joined)


def _narrowed(conn: Connection, search: str, filters: DeviceFilters) -> list[ColumnElement[bool]]:
    """The conditions of `filters` when searching. The devices the search finds are looked
    up first, each way of matching alone (an index each on PostgreSQL; an OR of them could
    not be planned onto the indexes, the enrolling user's being a subquery), each stopping
    past CANDIDATES. Few found: the page is cut from those, by primary key, instead of
    walking the sort's index past every device that does not match. Many: they are dense
    enough for the walk to meet a page of them soon."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PLAN_EACH_SEARCH)  # until this read's transaction ends
    found: set[str] = set()
    for lookup in _lookups(search):
        found.update(conn.execute(lookup.limit(CANDIDATES + 1)).scalars())
        if len(found) > CANDIDATES:
            return matching(filters)
    return [_e.device_id.in_(found), *matching(replace(filters, search=None))]


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


def _search(search: str) -> ColumnElement[bool]:
    """An enrollment the search finds (see `_matches`), as one condition."""
    own, user = _matches(search)
    return or_(*own, _e.device_id.in_(_enrolled_by(user)))


def _lookups(search: str) -> list[Select[str]]:
    """The UDIDs a search finds, one query for each way of matching (see `_matches`); on
    PostgreSQL each is a range of its own index (migration 0018)."""
    own, user = _matches(search)
    return [*(select(_e.device_id).where(match) for match in own), _enrolled_by(user)]


def _matches(search: str) -> tuple[list[ColumnElement[bool]], ColumnElement[bool]]:
    """Name contains the text; serial, UDID or the enrolling user's name start with it; any
    case: the conditions on an enrollment, and the one on its enrolling session. lower()
    LIKE rather than ILIKE: PostgreSQL runs it about twice as fast, and indexes lower()."""
    needle = search.lower()
    own = [
        _lower(_e.device_name).contains(needle, autoescape=True),
        _lower(_e.serial_number).startswith(needle, autoescape=True),
        _lower(_e.device_id).startswith(needle, autoescape=True),
    ]
    return own, _lower(ota_sessions.c.user).startswith(needle, autoescape=True)


def _lower(column: Any) -> Any:
    return func.lower(column, type_=String)


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


def _segments(column: Any, descending: bool, after: Position | None) -> list[tuple[Any, list[Any]]]:
    """The rest of the order after `after`, as (condition, ORDER BY) ranges read one after
    the other: devices with a value, then those without (reversed when descending). Each is
    one range of the (value, device_id) index, so page 500 starts where page 499 ended."""
    udid = _e.device_id
    if column is udid:
        if after is None:
            return [(true(), [udid.desc() if descending else udid.asc()])]
        beyond = udid < after.device_id if descending else udid > after.device_id
        return [(beyond, [udid.desc() if descending else udid.asc()])]
    valued, missing = column.is_not(None), column.is_(None)
    up, down = [column.asc(), udid.asc()], [column.desc(), udid.desc()]
    if after is None:
        if descending:
            return [(missing, [udid.desc()]), (valued, down)]
        return [(valued, up), (missing, [udid.asc()])]
    value, last = after.value, after.device_id
    if not descending:
        if value is None:
            return [(and_(missing, udid > last), [udid.asc()])]
        return [(and_(column >= value, or_(column > value, udid > last)), up),
                (missing, [udid.asc()])]  # fmt: skip
    if value is None:
        return [(and_(missing, udid < last), [udid.desc()]), (valued, down)]
    return [(and_(column <= value, or_(column < value, udid < last)), down)]


def _verdict(row: Row[Any]) -> DeviceCompliance | None:
    if row._mapping["verdict_device_id"] is None:
        return None
    return compliance_from_row(row, prefix="verdict_")
