"""GET /api/v1/devices and its CSV export: the device list paged, sorted, searched and
filtered in the database (see `orchardist.storage.listing`), the page the console shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from orchardist.mdm.device_export import csv_lines
from orchardist.mdm.device_list import (
    MAX_CURSOR,
    CursorError,
    decode_cursor,
    encode_cursor,
    every_device,
    os_version_filter,
)
from orchardist.mdm.summary import device_fields
from orchardist.storage.compliance import ComplianceStatus
from orchardist.storage.listing import DeviceFilters, DeviceSort
from orchardist.web.api.auth import Reader, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.models import Device
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["MDM"], dependencies=[Depends(storable_text)])
ServicesDep = Annotated[Services, Depends(services_of)]
DEFAULT_LIMIT = 1000  # also without `limit`: the whole list was the answer before paging
MAX_LIMIT = 10_000
CSV_PAGE = 1000
Text = Annotated[str | None, Query(max_length=255)]
State = Literal["enrolled", "authenticated", "checked_out", "retired", "erased"]  # DEVICE_STATES


@dataclass(frozen=True)
class Order:
    sort: DeviceSort
    descending: bool


def device_filters(
    q: Annotated[
        str | None,
        Query(
            max_length=255,
            description="Name contains it; serial, UDID or the enrolling user's name start with it",
        ),
    ] = None,
    model: Annotated[
        str | None,
        Query(
            max_length=128,
            description="ProductName (iPhone15,2), ModelName (iPhone) or model number",
        ),
    ] = None,
    os_version: Annotated[
        str | None,
        Query(max_length=32, description="17 or 17.2: that version and its updates (17.2.1)"),
    ] = None,
    group: Text = None,
    compliant: Annotated[
        bool | None, Query(description="true: compliant; false: non_compliant")
    ] = None,
    compliance: Annotated[
        ComplianceStatus | None, Query(description="unknown includes devices not evaluated yet")
    ] = None,
    enrolled_by: Annotated[
        str | None,
        Query(max_length=255, description="The user who enrolled it over the air (exact)"),
    ] = None,
    last_seen_before: Annotated[
        datetime | None,
        Query(description="Last check-in before this (ISO 8601; UTC unless it says)"),
    ] = None,
    last_seen_after: Annotated[
        datetime | None, Query(description="Last check-in at or after this")
    ] = None,
    state: State | None = None,
) -> DeviceFilters:
    """The filters of the list and its export, every one of them to match."""
    status = _status(compliant, compliance)
    try:
        version = None if os_version is None else os_version_filter(os_version)
    except ValueError as exc:
        raise _invalid("os_version", str(exc), os_version) from None
    return DeviceFilters(
        search=q or None, model=model or None, os_version=version, group=group or None,
        compliance=status, enrolled_by=enrolled_by or None,
        seen_before=_utc("last_seen_before", last_seen_before),
        seen_after=_utc("last_seen_after", last_seen_after), state=state,
    )  # fmt: skip


def device_order(
    sort: Annotated[
        DeviceSort,
        Query(
            description="Ties, and devices without the value (last "
            "ascending, first descending), by UDID"
        ),
    ] = DeviceSort.UDID,
    order: Literal["asc", "desc"] = "asc",
) -> Order:
    return Order(sort, order == "desc")


Filters = Annotated[DeviceFilters, Depends(device_filters)]
Ordered = Annotated[Order, Depends(device_order)]


@router.get(
    "/devices",
    response_model=list[Device],
    responses=refusals(),
)
async def list_devices(
    request: Request,
    response: Response,
    services: ServicesDep,
    _: Reader,
    filters: Filters,
    ordered: Ordered,
    limit: Annotated[
        int | None,
        Query(ge=1, le=MAX_LIMIT, description=f"Devices per page; {DEFAULT_LIMIT:,} without it"),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR,
            description="X-Next-Cursor of the previous page (same sort and order)",
        ),
    ] = None,
) -> list[Device]:
    """Devices that ever authenticated, enrolled or not, matching every filter given, one
    page at a time (by UDID unless `sort` says otherwise), each with its compliance. When
    more follow, the answer carries `X-Next-Cursor` and `Link: <…>; rel="next"`: ask again
    with that cursor. Pages are cut by position, so page 500 is as fast as page 1. 422 for a
    cursor made for another sort or order, or not made here."""
    after = None
    if cursor:
        try:
            after = decode_cursor(cursor, ordered.sort, ordered.descending)
        except CursorError as exc:
            raise _invalid("cursor", str(exc), cursor) from None
    page = await services.storage.list_devices(
        filters, sort=ordered.sort, descending=ordered.descending, after=after,
        limit=limit or DEFAULT_LIMIT,
    )  # fmt: skip
    if page.next is not None:
        following = encode_cursor(ordered.sort, ordered.descending, page.next)
        url = request.url.include_query_params(cursor=following)
        response.headers["X-Next-Cursor"] = following
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return [Device(**device_fields(d.enrollment, d.compliance)) for d in page.devices]


@router.get(
    "/devices.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One line per device, a header first"},
        **refusals(),
    },
)
async def export_devices(
    services: ServicesDep, _: Reader, filters: Filters, ordered: Ordered
) -> StreamingResponse:
    """Every device matching the filters, as CSV (UTF-8, a header line), in the list's
    order: streamed, however many there are. Cells that a spreadsheet would read as a
    formula (starting with =, +, -, @) begin with an apostrophe."""

    async def lines() -> AsyncIterator[str]:
        yield csv_lines([], header=True)
        batch: list[dict[str, object]] = []
        async for device in every_device(
            services.storage, filters, sort=ordered.sort, descending=ordered.descending,
            page_size=CSV_PAGE,
        ):  # fmt: skip
            batch.append(device_fields(device.enrollment, device.compliance))
            if len(batch) == CSV_PAGE:
                yield csv_lines(batch)
                batch = []
        yield csv_lines(batch)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="devices.csv"'},
    )


def _status(compliant: bool | None, compliance: ComplianceStatus | None) -> ComplianceStatus | None:
    if compliant is None:
        return compliance
    wanted = ComplianceStatus.COMPLIANT if compliant else ComplianceStatus.NON_COMPLIANT
    if compliance is not None and compliance != wanted:
        raise _invalid("compliant", f"contradicts compliance={compliance.value}", compliant)
    return wanted


def _utc(name: str, value: datetime | None) -> datetime | None:
    """A time as UTC (one without an offset taken as UTC); 422 when it has none there."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise _invalid(name, "a time between the years 1 and 9999 in UTC", str(value)) from None


def _invalid(name: str, message: str, value: object) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ["query", name], "msg": message, "type": "value_error", "input": value}]
    )
