"""The device list on every backend: paging by position through every sort returns each
device exactly once and in order; search and each filter."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchardist.os_versions import sort_key
from orchardist.storage import EndedBy, OtaSession
from orchardist.storage.compliance import ComplianceStatus, DeviceCompliance
from orchardist.storage.listing import DeviceFilters, DeviceSort, Position
from orchardist.storage.sql import listing as sql_listing
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import NOW, Spec, add_device

pytestmark = pytest.mark.anyio
NAMES = [None, "Alice's iPhone", "alice's iPad", "Kiosk", "Kiosk", "Lab Mac", "100% Bob"]
VERSIONS = [None, "9.3.5", "17.2", "17.2.1", "17.10", "17.9", "17.20", "18.0"]


def _fleet(count: int = 23) -> list[Spec]:
    """Devices with repeated, missing and numerically tricky values, so that ties and
    missing values are paged through too."""
    pick = random.Random(12)
    specs = []
    for n in range(count):
        seen = pick.choice(
            [None, NOW - timedelta(hours=2), NOW - timedelta(days=pick.randint(0, 9))]
        )
        specs.append(
            Spec(
                udid=f"{pick.randrange(16**4):04X}-{n:03d}",
                name=pick.choice(NAMES),
                serial=pick.choice([None, f"C02{n % 5}X"]),
                os_version=pick.choice(VERSIONS),
                enrolled_at=pick.choice([None, NOW - timedelta(days=pick.randint(1, 3))]),
                seen_at=seen,
            )
        )  # fmt: skip
    return specs


def _value(spec: Spec, sort: DeviceSort, seen: dict[str, datetime | None]) -> Any:
    return {
        DeviceSort.UDID: spec.udid,
        DeviceSort.NAME: spec.name,
        DeviceSort.SERIAL: spec.serial,
        DeviceSort.OS_VERSION: sort_key(spec.os_version),
        DeviceSort.LAST_SEEN: seen[spec.udid],
        DeviceSort.ENROLLED_AT: spec.enrolled_at,
    }[sort]


async def _all_pages(
    storage: SqlStorage, sort: DeviceSort, descending: bool, limit: int, filters: DeviceFilters
) -> list[str]:
    found: list[str] = []
    after: Position | None = None
    while True:
        page = await storage.list_devices(
            filters, sort=sort, descending=descending, after=after, limit=limit
        )
        found += [d.enrollment.device_id for d in page.devices]
        if page.next is None:
            return found
        assert len(page.devices) == limit
        after = page.next


async def test_paging_through_every_sort_returns_each_device_once_in_order(
    storage: SqlStorage,
) -> None:
    specs = _fleet()
    for spec in specs:
        await add_device(storage, spec)
    # The time a device was last seen is the store's (TokenUpdate counts as a check-in).
    seen = {e.device_id: e.last_seen_at for e in await storage.list_enrollments()}
    for sort in DeviceSort:
        values = {s.udid: _value(s, sort, seen) for s in specs}
        # Devices without the value last, ties by UDID; descending is the exact reverse.
        ascending = sorted(values, key=lambda u: (values[u] is None, values[u] or 0, u))
        for descending in (False, True):
            wanted = ascending[::-1] if descending else ascending
            for limit in (1, 4, 23, 50):
                got = await _all_pages(storage, sort, descending, limit, DeviceFilters())
                assert got == wanted, (sort, descending, limit)


async def test_a_position_survives_devices_added_before_it(storage: SqlStorage) -> None:
    for n in range(6):
        await add_device(storage, Spec(f"UDID-{n}", name=f"device {n}"))
    first = await storage.list_devices(DeviceFilters(), sort=DeviceSort.NAME, limit=3)
    await add_device(storage, Spec("UDID-9", name="device 0a"))  # sorts into page one
    second = await storage.list_devices(
        DeviceFilters(), sort=DeviceSort.NAME, after=first.next, limit=3
    )
    assert [d.enrollment.device_id for d in second.devices] == ["UDID-3", "UDID-4", "UDID-5"]
    assert second.next is None


async def _ids(storage: SqlStorage, **filters: Any) -> list[str]:
    page = await storage.list_devices(DeviceFilters(**filters), limit=100)
    return [d.enrollment.device_id for d in page.devices]


async def test_search_by_name_serial_udid_and_enrolling_user(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [
        Spec("00008030-AAAA", name="Alice's iPhone", serial="C02ABC"),
        Spec("00008030-BBBB", name="Kiosk 3", serial="F17XYZ"),
        Spec("00008101-CCCC", name="100% Bob_1", serial="DMPQ"),
    ]
    for spec in specs:
        await add_device(storage, spec)
    await storage.save_ota_session(
        OtaSession("t" * 64, "bob.smith", ("sales",), "enrolled", NOW, NOW, None, "00008030-BBBB")
    )
    assert await _ids(storage, search="ALICE") == ["00008030-AAAA"]  # any case
    assert await _ids(storage, search="'s iph") == ["00008030-AAAA"]  # name contains
    assert await _ids(storage, search="c02a") == ["00008030-AAAA"]  # serial starts with
    assert await _ids(storage, search="XYZ") == []  # … not contains
    assert await _ids(storage, search="00008030") == ["00008030-AAAA", "00008030-BBBB"]
    assert await _ids(storage, search="bob") == ["00008030-BBBB", "00008101-CCCC"]  # user, name
    assert await _ids(storage, search="%") == ["00008101-CCCC"]  # a character, not a wildcard
    assert await _ids(storage, search="Bo_") == []  # as a wildcard it would match "Bob"
    assert await _ids(storage, search="Bob_1") == ["00008101-CCCC"]
    # A search finding many devices is not narrowed to them first: the same answers.
    monkeypatch.setattr(sql_listing, "CANDIDATES", 1)
    assert await _ids(storage, search="bob") == ["00008030-BBBB", "00008101-CCCC"]
    paged = await _all_pages(storage, DeviceSort.NAME, True, 1, DeviceFilters(search="0000"))
    assert paged == ["00008030-BBBB", "00008030-AAAA", "00008101-CCCC"]  # Kiosk, Alice, 100%


async def test_each_filter(storage: SqlStorage) -> None:
    specs = [
        Spec("D-1", product="iPhone15,2", model="MQ9X3", os_version="17.2",
             seen_at=NOW - timedelta(days=10)),
        Spec("D-2", product="iPad13,4", model_name="iPad", os_version="17.2.1",
             seen_at=NOW - timedelta(hours=1)),
        Spec("D-3", product="iPhone15,2", os_version="17.20", enrolled_at=None),
        Spec("D-4", product="iPhone14,5", os_version="16.1", ended_by=EndedBy.RETIRED),
    ]  # fmt: skip
    for spec in specs:
        await add_device(storage, spec)
    assert await _ids(storage, model="iPhone15,2") == ["D-1", "D-3"]  # product name
    assert await _ids(storage, model="iPad") == ["D-2"]  # model name
    assert await _ids(storage, model="MQ9X3") == ["D-1"]  # model number
    assert await _ids(storage, os_version=(17, 2)) == ["D-1", "D-2"]  # not 17.20
    assert await _ids(storage, os_version=(17,)) == ["D-1", "D-2", "D-3"]
    await storage.set_group("sales", ["D-2", "D-4"])
    await storage.set_group("field", ["D-2"])
    assert await _ids(storage, group="sales") == ["D-2", "D-4"]
    assert await storage.groups_of("D-2") == ["field", "sales"]  # a device page's groups
    assert await storage.groups_of("D-1") == []
    assert await storage.group_sizes() == {"field": 1, "sales": 2}
    assert await _ids(storage, group="nobody") == []
    assert await _ids(storage, state="enrolled") == ["D-1", "D-2"]
    assert await _ids(storage, state="authenticated") == ["D-3"]
    assert await _ids(storage, state="retired") == ["D-4"]
    cutoff = NOW - timedelta(days=1)
    # D-4 was last seen enrolling 30 days ago (retiring is no check-in); D-3 never was.
    assert await _ids(storage, seen_before=cutoff) == ["D-1", "D-4"]
    assert await _ids(storage, seen_after=cutoff) == ["D-2"]
    await storage.save_ota_session(
        OtaSession("u" * 64, "carol", (), "enrolled", NOW, NOW, None, "D-1")
    )
    await storage.save_ota_session(OtaSession("v" * 64, "carol", (), "identified", NOW, NOW,
                                              None, "D-2"))  # fmt: skip
    assert await _ids(storage, enrolled_by="carol") == ["D-1"]  # completed sessions only
    assert await _ids(storage, enrolled_by="car") == []  # the exact name


async def test_compliance_filter_and_verdicts_in_the_page(storage: SqlStorage) -> None:
    for n in range(4):
        await add_device(storage, Spec(f"D-{n}"))
    await storage.save_compliance(
        [
            DeviceCompliance("D-0", ComplianceStatus.COMPLIANT, (), NOW, "r"),
            DeviceCompliance("D-1", ComplianceStatus.NON_COMPLIANT, ("no passcode",), NOW, "r"),
            DeviceCompliance("D-2", ComplianceStatus.UNKNOWN, ("no inventory yet",), NOW, "r"),
        ]
    )
    assert await _ids(storage, compliance=ComplianceStatus.COMPLIANT) == ["D-0"]
    assert await _ids(storage, compliance=ComplianceStatus.NON_COMPLIANT) == ["D-1"]
    # Never evaluated (D-3) is unknown too.
    assert await _ids(storage, compliance=ComplianceStatus.UNKNOWN) == ["D-2", "D-3"]
    page = await storage.list_devices(DeviceFilters(), limit=10)
    verdicts = [d.compliance for d in page.devices]
    assert verdicts[1] == DeviceCompliance(
        "D-1", ComplianceStatus.NON_COMPLIANT, ("no passcode",), NOW, "r"
    )
    assert verdicts[3] is None


async def test_filters_and_paging_together(storage: SqlStorage) -> None:
    for n in range(9):
        await add_device(storage, Spec(f"D-{n}", name=f"n{8 - n}", os_version=f"17.{n % 3}"))
    got = await _all_pages(
        storage, DeviceSort.NAME, True, 2, DeviceFilters(os_version=(17, 1), search="n")
    )
    assert got == ["D-1", "D-4", "D-7"]  # names n7, n4, n1: descending
