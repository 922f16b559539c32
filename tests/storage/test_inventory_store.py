"""Inventory storage on every backend, and bounded retention of raw results."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from orchardist.mdm.report_digest import Digest, PackedLists, digest
from orchardist.storage import DeviceFacts, NewCommand, TargetStatus
from orchardist.storage.inventory import (
    App,
    Certificate,
    InventoryUpdate,
    Profile,
    ProvisioningProfile,
)
from orchardist.storage.sql.compression import lz4_available
from orchardist.storage.sql.mdm import RESULTS_KEPT
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FULL = InventoryUpdate(
    facts={"OSVersion": "18.1", "BatteryLevel": 0.5},
    security={"PasscodePresent": True},
    restrictions={"GlobalRestrictions": {}},
    apps=(
        App("com.example.a", "A", "1", "1.0", 1024),
        App("com.example.b", None, None, None, None),
    ),
    certificates=(
        Certificate("device", True, "a" * 64, NOW + timedelta(days=30)),
        Certificate("bad", False, None, None),
    ),
    profiles=(Profile("org.example.wifi", "Wi-Fi", "U-1", True),),
    provisioning_profiles=(ProvisioningProfile("P-1", "In-House", NOW + timedelta(days=10)),),
)


async def test_round_trip_and_partial_updates(storage: SqlStorage) -> None:
    assert await storage.get_inventory("D") is None
    await storage.apply_inventory("D", FULL, NOW)
    known = await storage.get_inventory("D")
    assert known is not None
    assert (known.facts, known.security, known.restrictions) == (
        FULL.facts,
        FULL.security,
        FULL.restrictions,
    )
    assert (known.apps, known.certificates, known.profiles) == (
        FULL.apps,
        FULL.certificates,
        FULL.profiles,
    )
    assert known.provisioning_profiles == FULL.provisioning_profiles
    later = NOW + timedelta(hours=1)
    await storage.apply_inventory(
        "D", InventoryUpdate(apps=(App("com.example.c", "C", "2", "2.0", 1),)), later
    )
    updated = await storage.get_inventory("D")
    assert updated is not None
    assert [a.identifier for a in updated.apps] == ["com.example.c"]  # the list is replaced
    assert updated.facts == FULL.facts  # what the update did not speak about stays
    assert updated.updated_at == later


async def test_device_information_answers_merge_key_by_key(storage: SqlStorage) -> None:
    """Asking for two keys must not erase the battery level and capacity reported before."""
    first = {"BatteryLevel": 0.5, "DeviceCapacity": 64.0, "OSVersion": "18.1"}
    await storage.apply_inventory("M", InventoryUpdate(facts=first), NOW)
    later = NOW + timedelta(hours=2)
    await storage.apply_inventory(
        "M", InventoryUpdate(facts={"OSVersion": "18.2", "DeviceName": "Kim's iPhone"}), later
    )
    known = await storage.get_inventory("M")
    assert known is not None
    assert known.facts == {
        "BatteryLevel": 0.5,
        "DeviceCapacity": 64.0,
        "OSVersion": "18.2",
        "DeviceName": "Kim's iPhone",
    }
    assert known.facts_seen_at == {
        "BatteryLevel": NOW,
        "DeviceCapacity": NOW,
        "OSVersion": later,
        "DeviceName": later,
    }
    await storage.apply_inventory("M", InventoryUpdate(security={"PasscodePresent": False}), later)
    still = await storage.get_inventory("M")
    assert still is not None
    assert still.facts == known.facts  # a SecurityInfo answer leaves the facts alone


async def test_an_unchanged_list_is_not_rewritten(storage: SqlStorage) -> None:
    """A device answering the same lists again (what devices mostly do) rewrites none of
    their rows: a mark made in a row since stays. A list that changed is rewritten whole,
    and the answer after it compares with what it wrote."""
    await storage.apply_inventory("D", FULL, NOW)
    mark = "UPDATE inventory_apps SET name = 'marked' WHERE device_id = 'D'"
    marked_certs = "UPDATE inventory_certificates SET common_name = 'marked'"
    await storage.database.write(
        lambda conn: (conn.execute(text(mark)), conn.execute(text(marked_certs)))
    )
    later = NOW + timedelta(hours=1)
    await storage.apply_inventory("D", FULL, later)
    same = await storage.get_inventory("D")
    assert same is not None
    assert same.updated_at == later
    assert {app.name for app in same.apps} == {"marked"}
    assert {cert.common_name for cert in same.certificates} == {"marked"}
    assert same.profiles == FULL.profiles
    assert FULL.apps is not None
    changed = InventoryUpdate(apps=(*FULL.apps[:1], App("com.example.c", "C", "2", "2.0", 1)))
    await storage.apply_inventory("D", changed, later)
    rewritten = await storage.get_inventory("D")
    assert rewritten is not None
    assert rewritten.apps == changed.apps
    assert {cert.common_name for cert in rewritten.certificates} == {"marked"}  # not in it
    await storage.apply_inventory("D", FULL, later)  # back to the first list: written again
    again = await storage.get_inventory("D")
    assert again is not None
    assert again.apps == FULL.apps


async def test_raw_results_are_kept_for_the_latest_only(storage: SqlStorage) -> None:
    await storage.authenticate(DeviceFacts("D", "t"), "a" * 64, NOW)
    uuids = [f"C{n}" for n in range(RESULTS_KEPT + 2)]
    for n, uuid in enumerate(uuids):
        at = NOW + timedelta(minutes=n)
        await storage.enqueue(NewCommand(uuid, "SecurityInfo", b"<plist/>"), ["D"], at)
        exchange = await storage.exchange("D", None, at)
        assert exchange.next_command is not None
        stored = await storage.exchange(
            "D", (uuid, TargetStatus.ACKNOWLEDGED, f"result {n}".encode()), at
        )
        assert stored.stored_request_type == "SecurityInfo"
    kept = [(await storage.command_targets(uuid, NOW))[0] for uuid in uuids]
    assert [t.result is not None for t in kept] == [False, False] + [True] * RESULTS_KEPT
    assert all(t.status == TargetStatus.ACKNOWLEDGED for t in kept)


async def test_reported_names_are_fitted_to_their_columns(storage: SqlStorage) -> None:
    """A name with NUL characters or longer than its column is stored cut to fit (PostgreSQL
    refuses both); one that fits is stored as it is."""
    apps = (
        App("com.example.nul", "Na\x00me", "1\x00", None, None),
        App("com.example.long", "n" * 1000, "v" * 1000, "ok", None),
    )
    await storage.apply_inventory("D", InventoryUpdate(apps=apps), NOW)
    stored = await storage.get_inventory("D")
    assert stored is not None
    long, nul = stored.apps
    assert (nul.name, nul.version, nul.short_version) == ("Name", "1", None)
    assert len(long.name or "") < 1000
    assert (long.name or "").strip("n") == ""
    assert len(long.version or "") < 1000
    assert long.short_version == "ok"


async def test_a_worker_read_list_is_unpickled_only_when_it_changed(storage: SqlStorage) -> None:
    """A large report's lists come back from the worker process pickled, with digests
    (mdm/report_digest): storage builds the records only of a list that changed, so the
    same thousand apps answered again cost the server's own process no records at all."""

    def reported(apps: list[dict[str, object]]) -> PackedLists:
        fields = {"UDID": "D", "CommandUUID": "C", "InstalledApplicationList": apps}
        body = plistlib.dumps({"Status": "Acknowledged", **fields})
        digested = digest(body)
        assert isinstance(digested, Digest)
        update = digested.report(body).inventories["InstalledApplicationList"]  # type: ignore[index]
        assert isinstance(update, PackedLists)
        assert update.unread() == ("apps",)
        return update

    apps: list[dict[str, object]] = [
        {"Identifier": f"com.example.a{n}", "Name": f"A{n}", "Version": "1", "BundleSize": n}
        for n in range(300)
    ]
    first = reported(apps)
    await storage.apply_inventory("D", first, NOW)
    assert first.unread() == ()  # a new list: read and written
    known = await storage.get_inventory("D")
    assert known is not None
    assert [app.identifier for app in known.apps] == sorted(str(a["Identifier"]) for a in apps)
    mark = "UPDATE inventory_apps SET name = 'marked' WHERE device_id = 'D'"
    await storage.database.write(lambda conn: conn.execute(text(mark)))

    again = reported(apps)
    await storage.apply_inventory("D", again, NOW + timedelta(hours=1))
    assert again.unread() == ("apps",)  # the digest matched: never unpickled
    same = await storage.get_inventory("D")
    assert same is not None
    assert {app.name for app in same.apps} == {"marked"}
    assert same.updated_at == NOW + timedelta(hours=1)

    changed = reported([*apps[1:], {"Identifier": "com.example.new", "Version": "2"}])
    await storage.apply_inventory("D", changed, NOW + timedelta(hours=2))
    assert changed.unread() == ()
    rewritten = await storage.get_inventory("D")
    assert rewritten is not None
    assert "com.example.new" in {app.identifier for app in rewritten.apps}
    assert "com.example.a0" not in {app.identifier for app in rewritten.apps}
    assert {app.name for app in rewritten.apps} == {None, *(f"A{n}" for n in range(1, 300))}


async def test_a_large_result_is_stored_whole(storage: SqlStorage, backend: str) -> None:
    """A megabyte answer (a well-stocked device's app list) is stored and read back as it
    came; on PostgreSQL compressed with LZ4 where the server has it (migration 0028), which
    costs its backend a third of pglz's CPU."""
    await storage.authenticate(DeviceFacts("D", "t"), "a" * 64, NOW)
    await storage.enqueue(NewCommand("C", "InstalledApplicationList", b"<plist/>"), ["D"], NOW)
    assert (await storage.exchange("D", None, NOW)).next_command is not None
    apps = [
        {"Identifier": f"com.example.app{n}", "Version": f"{n % 7}.{n % 13}"} for n in range(12_000)
    ]
    body = plistlib.dumps({"Status": "Acknowledged", "InstalledApplicationList": apps})
    assert len(body) > 1_000_000
    stored = await storage.exchange("D", ("C", TargetStatus.ACKNOWLEDGED, body), NOW)
    assert stored.stored_request_type == "InstalledApplicationList"
    (target,) = await storage.command_targets("C", NOW)
    assert target.result == body
    if backend == "postgres":
        compression = await storage.database.read(
            lambda conn: conn.execute(
                text("SELECT pg_column_compression(result) FROM command_targets")
            ).scalar_one()
        )
        lz4 = await storage.database.read(lambda conn: lz4_available(conn))
        assert compression == ("lz4" if lz4 else "pglz")
