"""The provisioning profiles' storage contract, on every SQL backend: profiles kept whole and
once per UUID, renewals, expiry, assignments, device rows, and the devices holding a
profile by our record or by their own ProvisioningProfileList."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from orchardist.storage import NewCommand
from orchardist.storage.inventory import InventoryUpdate, ProvisioningProfile
from orchardist.storage.profiles import Assignment, TargetKind
from orchardist.storage.provisioning import (
    PROVISIONING_MAX_BYTES,
    DeviceProvisioning,
    ProvisioningState,
    StoredProvisioningProfile,
)
from orchardist.storage.sql.repositories import SqlStorage
from tests.storage.devices import Spec, add_device

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def profile(
    uuid: str = "UUID-1", app_id: str = "TEAM1.com.example.sales", days: int = 300
) -> StoredProvisioningProfile:
    return StoredProvisioningProfile(
        uuid=uuid,
        name=f"Sales {uuid}",
        team_id="TEAM1",
        app_id=app_id,
        expires_at=NOW + timedelta(days=days),
        provisions_all_devices=True,
        device_count=0,
        sha256="a" * 64,
        body=b"\x30\x82signed" + uuid.encode(),
        created_at=NOW,
    )


def row(
    device_id: str,
    uuid: str = "UUID-1",
    state: ProvisioningState = ProvisioningState.PENDING,
    command_uuid: str | None = None,
    error: str | None = None,
) -> DeviceProvisioning:
    return DeviceProvisioning(device_id, uuid, state, command_uuid, error, NOW)


async def test_a_profile_is_stored_whole_and_once(storage: SqlStorage) -> None:
    stored = profile()
    assert await storage.add_provisioning_profile(stored)
    assert await storage.get_provisioning_profile("UUID-1") == stored
    # The same UUID again (an upload repeated, or two at once) changes nothing.
    again = replace(stored, name="Other", body=b"other")
    added = await asyncio.gather(*(storage.add_provisioning_profile(again) for _ in range(2)))
    assert added == [False, False]
    assert await storage.get_provisioning_profile("UUID-1") == stored
    assert await storage.get_provisioning_profile("UUID-2") is None


async def test_what_the_schema_cannot_hold_is_refused(storage: SqlStorage) -> None:
    with pytest.raises(ValueError, match="bytes, over"):
        await storage.add_provisioning_profile(
            replace(profile(), body=b"x" * (PROVISIONING_MAX_BYTES + 1))
        )
    with pytest.raises(ValueError, match="app_id"):
        await storage.add_provisioning_profile(profile(app_id="T." + "x" * 300))
    with pytest.raises(ValueError, match="uuid"):
        await storage.add_provisioning_profile(profile(uuid=""))
    assert await storage.list_provisioning_profiles() == []
    long_name = replace(profile(), name="n" * 300)  # a reported name is cut to fit
    assert await storage.add_provisioning_profile(long_name)
    found = await storage.get_provisioning_profile("UUID-1")
    assert found is not None
    assert found.name == "n" * 255


async def test_listed_by_app_id_latest_expiry_first(storage: SqlStorage) -> None:
    for uuid, app_id, days in (
        ("OLD", "TEAM1.com.example.sales", 10),
        ("NEW", "TEAM1.com.example.sales", 365),
        ("WIKI", "TEAM1.com.example.wiki", 100),
        ("ANY", "TEAM1.*", 50),
    ):
        await storage.add_provisioning_profile(profile(uuid, app_id, days))
    listed = await storage.list_provisioning_profiles()
    assert [p.uuid for p in listed] == ["ANY", "NEW", "OLD", "WIKI"]
    sales = await storage.list_provisioning_profiles(app_id="TEAM1.com.example.sales")
    assert [p.uuid for p in sales] == ["NEW", "OLD"]
    assert await storage.list_provisioning_profiles(app_id="TEAM2.*") == []


async def test_renewal_and_expiry(storage: SqlStorage) -> None:
    for uuid, days in (("OLD", 10), ("SOON", 20), ("LATER", 40)):
        await storage.add_provisioning_profile(profile(uuid, days=days))
    expiring = await storage.provisioning_profiles_expiring(NOW + timedelta(days=30))
    assert [p.uuid for p in expiring] == ["OLD", "SOON"]
    assert await storage.mark_provisioning_replaced("OLD", "LATER")
    old = await storage.get_provisioning_profile("OLD")
    assert old is not None
    assert old.replaced_by == "LATER"
    # A renewed profile warns no more.
    expiring = await storage.provisioning_profiles_expiring(NOW + timedelta(days=30))
    assert [p.uuid for p in expiring] == ["SOON"]
    assert await storage.mark_provisioning_replaced("OLD", None)
    old = await storage.get_provisioning_profile("OLD")
    assert old is not None
    assert old.replaced_by is None
    assert not await storage.mark_provisioning_replaced("NONE", "LATER")


async def test_each_expiry_warning_is_claimed_once(storage: SqlStorage) -> None:
    await storage.add_provisioning_profile(profile())
    # Two servers at once: one of them logs the 30-day warning.
    claims = await asyncio.gather(
        *(storage.claim_provisioning_expiry_warning("UUID-1", 30) for _ in range(2))
    )
    assert sorted(claims) == [False, True]
    assert not await storage.claim_provisioning_expiry_warning("UUID-1", 30)
    assert await storage.claim_provisioning_expiry_warning("UUID-1", 7)  # the next one down
    assert not await storage.claim_provisioning_expiry_warning("UUID-1", 14)  # passed already
    found = await storage.get_provisioning_profile("UUID-1")
    assert found is not None
    assert found.expiry_warned_days == 7
    assert not await storage.claim_provisioning_expiry_warning("NONE", 30)


async def test_assignments_are_added_once_and_removed(storage: SqlStorage) -> None:
    await storage.set_provisioning_assignments("UUID-1", TargetKind.GROUP, ["sales", "sales"],
                                               assigned=True)  # fmt: skip
    await storage.set_provisioning_assignments("UUID-1", TargetKind.DEVICE, ["U1"], assigned=True)
    await storage.set_provisioning_assignments("UUID-2", TargetKind.ALL, [""], assigned=True)
    assert await storage.provisioning_assignments("UUID-1") == [
        Assignment("UUID-1", TargetKind.DEVICE, "U1"),
        Assignment("UUID-1", TargetKind.GROUP, "sales"),
    ]
    await storage.set_provisioning_assignments("UUID-1", TargetKind.DEVICE, ["U1"],
                                               assigned=False)  # fmt: skip
    assert await storage.provisioning_assignments() == [
        Assignment("UUID-1", TargetKind.GROUP, "sales"),
        Assignment("UUID-2", TargetKind.ALL, ""),
    ]
    assert await storage.app_assignments() == []


async def test_device_rows_are_upserted_and_found(storage: SqlStorage) -> None:
    pending = row("U1", command_uuid="C1")
    await storage.save_device_provisioning(
        [pending, row("U2", state=ProvisioningState.FAILED, error="e" * 5000),
         row("U1", "UUID-2", ProvisioningState.INSTALLED)]
    )  # fmt: skip
    assert await storage.device_provisioning_by_command("U1", "C1") == pending
    assert await storage.device_provisioning_by_command("U1", "C2") is None
    installed = replace(pending, state=ProvisioningState.INSTALLED, command_uuid=None)
    await storage.save_device_provisioning([installed])
    assert await storage.device_provisioning(device_id="U1", uuid="UUID-1") == [installed]
    assert [(r.uuid, r.device_id) for r in await storage.device_provisioning(device_id="U1")] == [
        ("UUID-1", "U1"), ("UUID-2", "U1")
    ]  # fmt: skip
    failed = (await storage.device_provisioning(uuid="UUID-1"))[1]
    assert (failed.device_id, failed.error) == ("U2", "e" * 2000)
    assert await storage.provisioning_state_counts("UUID-1") == {
        ProvisioningState.INSTALLED: 1, ProvisioningState.FAILED: 1
    }  # fmt: skip
    assert await storage.provisioning_state_counts("UUID-9") == {}


async def test_holders_by_our_record_or_by_the_devices_list(storage: SqlStorage) -> None:
    await storage.save_device_provisioning(
        [row("U1", state=ProvisioningState.INSTALLED), row("U2", state=ProvisioningState.INSTALLED),
         row("U3", state=ProvisioningState.PENDING), row("U4", state=ProvisioningState.FAILED),
         row("U5", "UUID-2", ProvisioningState.INSTALLED)]
    )  # fmt: skip
    listed = (ProvisioningProfile("UUID-1", "Sales", NOW + timedelta(days=300)),)
    for device_id in ("U2", "U6"):  # U6: installed with the app, not by a command of ours
        await storage.apply_inventory(device_id, InventoryUpdate(provisioning_profiles=listed), NOW)
    assert await storage.provisioning_holders("UUID-1") == ["U1", "U2", "U6"]
    assert await storage.provisioning_holders("UUID-2") == ["U5"]
    assert await storage.provisioning_holders("UUID-9") == []


async def test_delete_takes_every_row_of_the_profile(storage: SqlStorage) -> None:
    for uuid in ("UUID-1", "UUID-2"):
        await storage.add_provisioning_profile(profile(uuid))
        await storage.set_provisioning_assignments(uuid, TargetKind.ALL, [""], assigned=True)
        await storage.save_device_provisioning([row("U1", uuid, ProvisioningState.INSTALLED)])
    assert await storage.delete_provisioning_profile("UUID-1")
    assert await storage.get_provisioning_profile("UUID-1") is None
    assert await storage.provisioning_assignments("UUID-1") == []
    assert await storage.device_provisioning(uuid="UUID-1") == []
    assert [r.uuid for r in await storage.device_provisioning(device_id="U1")] == ["UUID-2"]
    assert [p.uuid for p in await storage.list_provisioning_profiles()] == ["UUID-2"]
    assert not await storage.delete_provisioning_profile("UUID-1")
    await storage.save_device_provisioning([])


async def test_provisioning_concerns_a_device_with_an_assignment_or_a_row(
    storage: SqlStorage,
) -> None:
    assert not await storage.provisioning_concerns("U1")
    await storage.add_provisioning_profile(profile())
    await storage.save_device_provisioning([row("U1")])
    assert await storage.provisioning_concerns("U1")
    assert not await storage.provisioning_concerns("U2")
    await storage.set_provisioning_assignments("UUID-1", TargetKind.ALL, [""], assigned=True)
    assert await storage.provisioning_concerns("U2")


async def test_a_command_is_queued_with_its_rows_or_neither(storage: SqlStorage) -> None:
    for udid in ("U1", "U2"):
        await add_device(storage, Spec(udid))
    command = NewCommand("C1", "InstallProvisioningProfile", b"<plist/>")
    await storage.queue_provisioning_command(
        command, [row("U1", command_uuid="C1"), row("U2", command_uuid="C1")], NOW
    )
    assert [t.device_id for t in await storage.command_targets("C1", NOW)] == ["U1", "U2"]
    assert [r.command_uuid for r in await storage.device_provisioning(uuid="UUID-1")] == ["C1"] * 2
    # The command cannot be queued (its UUID is taken): the rows are not saved either.
    with pytest.raises(IntegrityError):
        await storage.queue_provisioning_command(command, [row("U1", "UUID-2", command_uuid="C1")],
                                                 NOW)  # fmt: skip
    assert await storage.device_provisioning(uuid="UUID-2") == []
