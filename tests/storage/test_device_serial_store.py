"""Finding devices by serial number on every backend: as given or in capitals, several
UDIDs for one serial, and serials no device reported left out."""

from __future__ import annotations

import pytest

from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import Spec, add_device

pytestmark = pytest.mark.anyio


async def test_serials_find_their_devices(storage: SqlStorage) -> None:
    for spec in (
        Spec("UDID-B", serial="C02XL0GHJGH5"),
        Spec("UDID-A", serial="C02XL0GHJGH5"),  # enrolled twice
        Spec("UDID-C", serial="F17ABCDE"),
        Spec("UDID-D", serial=None),
    ):
        await add_device(storage, spec)
    found = await storage.device_ids_by_serial(["C02XL0GHJGH5", "f17abcde", "NOPE", "UDID-D"])
    assert found == {"C02XL0GHJGH5": ["UDID-A", "UDID-B"], "f17abcde": ["UDID-C"]}
    assert await storage.device_ids_by_serial([]) == {}
