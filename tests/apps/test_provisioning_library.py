"""The provisioning library on every backend, through the MDM path: uploads refused with
nothing stored (malformed, forged, expired), expiry warnings once per threshold, assignment
with InstallProvisioningProfile / RemoveProvisioningProfile and their answers, drift seen
in a ProvisioningProfileList, and renewal replacing the old profile on every holder."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from orchardist.apps.provisioning_library import (
    ProvisioningConflictError,
    ProvisioningLibrary,
    ProvisioningRejectedError,
)
from tests.apps.factory import TEAM_ID, build_mobileprovision
from tests.web.mdm_server import Device, Server

pytestmark = pytest.mark.anyio
APP_ID = f"{TEAM_ID}.com.example.expenses"


def _library(server: Server) -> ProvisioningLibrary:
    library = server.services.provisioning
    assert isinstance(library, ProvisioningLibrary)
    return library


def _profile(days: float, **fields: Any) -> bytes:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return build_mobileprovision(expires_at=expires, **fields)


async def _enrolled(server: Server, *names: str) -> list[Device]:
    devices = [await server.device(f"UDID-{name}", 80 + n) for n, name in enumerate(names)]
    for device in devices:
        await server.enroll(device)
    return devices


async def _next(server: Server, device: Device) -> dict[str, Any]:
    """The next command the device is sent (asserting there is one)."""
    reply = await server.report(device, "Idle")
    assert reply.status_code == 200
    assert reply.content, f"{device.udid} was sent nothing"
    sent: dict[str, Any] = plistlib.loads(reply.content)
    return sent


async def _answer(server: Server, device: Device, sent: dict[str, Any], **fields: Any) -> None:
    status = fields.pop("status", "Acknowledged")
    reply = await server.report(device, status, CommandUUID=sent["CommandUUID"], **fields)
    assert reply.status_code == 200


async def _states(server: Server, uuid: str) -> dict[str, str]:
    rows = await server.services.storage.device_provisioning(uuid=uuid)
    return {row.device_id: row.state.value for row in rows}


def _listing(*uuids: str) -> list[dict[str, Any]]:
    expires = datetime(2030, 1, 1)
    return [{"UUID": u, "Name": "Expenses", "ExpiryDate": expires} for u in uuids]


async def test_bad_uploads_are_refused_with_nothing_stored(server: Server) -> None:
    library = _library(server)
    good = _profile(200)
    forged = good.replace(b"com.example.expenses", b"com.example.expensez")
    with pytest.raises(ProvisioningRejectedError, match="signature does not verify"):
        await library.upload(forged)
    with pytest.raises(ProvisioningRejectedError, match="not a provisioning profile"):
        await library.upload(b"<plist><dict/></plist>")
    # Expired: refused, not warned (no app launches under it); the message says what to do.
    with pytest.raises(ProvisioningRejectedError) as refused:
        await library.upload(_profile(-3))
    (problem,) = refused.value.problems
    assert "expired 3 days ago" in problem
    assert "not stored" in problem
    assert "upload that" in problem
    assert await server.services.storage.list_provisioning_profiles() == []

    stored = await library.upload(good)
    assert not stored.unchanged
    assert (stored.profile.app_id, stored.warnings, stored.replaces) == (APP_ID, (), [])
    assert "iPhone Distribution: Example Corp" in stored.signer
    again = await library.upload(good)
    assert (again.unchanged, again.profile.uuid) == (True, stored.profile.uuid)
    assert len(await server.services.storage.list_provisioning_profiles()) == 1


async def test_expiry_is_warned_at_upload_and_logged_once_per_threshold(server: Server) -> None:
    library = _library(server)
    soon = await library.upload(_profile(20.5, name="Soon", devices=["00008110-0001"]))
    assert any("expires in 20 days" in w and "upload the renewed" in w for w in soon.warnings)
    assert any("lists 1 devices" in w for w in soon.warnings)
    later = await library.upload(_profile(40.5, app_id=f"{TEAM_ID}.com.example.wiki"))
    assert later.warnings == ()

    now = datetime.now(UTC)
    with capture_logs() as logs:
        first = await library.expiry_warnings(now)
        assert [(w.profile.name, w.threshold) for w in first] == [("Soon", 30)]
        assert await library.expiry_warnings(now) == []  # logged already
        assert await library.expiry_warnings(now + timedelta(days=5)) == []  # 15.5 days left
    logged = [entry for entry in logs if entry["event"] == "provisioning_profile_expiring"]
    assert [entry["days"] for entry in logged] == [30]
    assert "expires in 20 days" in logged[0]["message"]

    steps = [(7.5, [("Soon", 14)]), (12, [("Expenses In House", 30)]), (14, [("Soon", 7)]),
             (21, [("Soon", 0)]), (22, [])]  # fmt: skip
    for days, expected in steps:
        warned = await library.expiry_warnings(now + timedelta(days=days))
        assert [(w.profile.name, w.threshold) for w in warned] == expected, days
    soon_record = await server.services.storage.get_provisioning_profile(soon.profile.uuid)
    assert soon_record is not None
    assert soon_record.expiry_warned_days == 0


async def test_assign_install_fail_unassign_and_drift(server: Server) -> None:
    library = _library(server)
    a, b = await _enrolled(server, "A", "B")
    uuid = (await library.upload(_profile(200))).profile.uuid
    await server.services.storage.set_group("sales", ["UDID-A", "UDID-B"])
    done = await library.assign(uuid, groups=["sales"])
    assert (done.installs, done.removals) == (2, 0)

    sent = await _next(server, a)
    assert sent["Command"]["RequestType"] == "InstallProvisioningProfile"
    stored = await server.services.storage.get_provisioning_profile(uuid)
    assert stored is not None
    assert sent["Command"]["ProvisioningProfile"] == stored.body
    await _answer(server, a, sent)
    sent = await _next(server, b)
    await _answer(
        server, b, sent, status="Error",
        ErrorChain=[{"ErrorDomain": "MCInstallationErrorDomain", "ErrorCode": 4001,
                     "USEnglishDescription": "The provisioning profile is not valid."}],
    )  # fmt: skip
    assert await _states(server, uuid) == {"UDID-A": "installed", "UDID-B": "failed"}
    (failed,) = await server.services.storage.device_provisioning(device_id="UDID-B")
    assert failed.error == (
        "MCInstallationErrorDomain 4001: The provisioning profile is not valid."
    )
    assert (await library.reconcile()).installs == 0  # a refusal is not sent again by itself

    # The device's own list lacks it: missing, and the next pass installs it again.
    await server.queue("ProvisioningProfileList", {}, a)
    sent = await _next(server, a)
    await _answer(server, a, sent, ProvisioningProfileList=_listing("OTHER-UUID"))
    assert (await _states(server, uuid))["UDID-A"] == "missing"
    assert (await library.reconcile()).installs == 1
    await _answer(server, a, await _next(server, a))

    # Unassigned: removed where we installed it (not where it failed), then listed.
    done = await library.assign(uuid, groups=["sales"], assigned=False)
    assert (done.installs, done.removals) == (0, 1)
    sent = await _next(server, a)
    assert sent["Command"] == {"RequestType": "RemoveProvisioningProfile", "UUID": uuid}
    await _answer(server, a, sent)
    assert await _states(server, uuid) == {"UDID-A": "removed", "UDID-B": "failed"}
    sent = await _next(server, a)
    assert sent["Command"]["RequestType"] == "ProvisioningProfileList"


async def test_assignments_that_cannot_work_are_refused(server: Server) -> None:
    library = _library(server)
    await _enrolled(server, "A")
    old = (await library.upload(_profile(20))).profile.uuid
    new = (await library.upload(_profile(300))).profile.uuid
    with pytest.raises(ProvisioningConflictError, match=f"renewed by {new}"):
        await library.assign(old, devices=["UDID-A"])
    with pytest.raises(LookupError, match="unknown device UDID-NOPE"):
        await library.assign(new, devices=["UDID-NOPE"])
    with pytest.raises(LookupError, match="no provisioning profile"):
        await library.assign("NO-SUCH-UUID", everyone=True)
    assert await server.services.storage.provisioning_assignments() == []


async def test_renewal_replaces_the_old_profile_on_every_holder(server: Server) -> None:
    library = _library(server)
    storage = server.services.storage
    a, b, c, d = await _enrolled(server, "A", "B", "C", "D")
    old = (await library.upload(_profile(10, name="Expenses 2026"))).profile.uuid
    # A holds the old profile because we installed it; B because its app brought it (its
    # ProvisioningProfileList names it); C does not hold it.
    await library.assign(old, devices=["UDID-A"])
    await _answer(server, a, await _next(server, a))
    await server.queue("ProvisioningProfileList", {}, b)
    await _answer(server, b, await _next(server, b), ProvisioningProfileList=_listing(old))
    assert await storage.provisioning_holders(old) == ["UDID-A", "UDID-B"]

    renewed = await library.upload(_profile(375, name="Expenses 2027"))
    new = renewed.profile.uuid
    assert (renewed.replaces, renewed.installs) == ([old], 2)
    replaced = await storage.get_provisioning_profile(old)
    assert replaced is not None
    assert replaced.replaced_by == new
    # A's assignment moved to the new profile; B, which held the old one without one, got
    # its own (so that it keeps the renewal until someone unassigns it).
    assigned = await storage.provisioning_assignments()
    assert [(x.identifier, x.target) for x in assigned] == [(new, "UDID-A"), (new, "UDID-B")]
    assert (await library.reconcile()).removals == 0  # the old one waits for the new one
    # The others are asked what they hold: C holds nothing of it; D has the new profile
    # already (its app brought it) beside the old one, which goes at once.
    assert renewed.asked == 2
    sent = await _next(server, c)
    assert sent["Command"]["RequestType"] == "ProvisioningProfileList"
    await _answer(server, c, sent, ProvisioningProfileList=_listing("OTHER-UUID"))
    assert (await server.report(c, "Idle")).content == b""
    await _answer(server, d, await _next(server, d), ProvisioningProfileList=_listing(old, new))
    sent = await _next(server, d)
    assert sent["Command"] == {"RequestType": "RemoveProvisioningProfile", "UUID": old}
    await _answer(server, d, sent)
    await _answer(server, d, await _next(server, d), ProvisioningProfileList=_listing(new))

    for device in (a, b):
        sent = await _next(server, device)
        assert sent["Command"]["RequestType"] == "InstallProvisioningProfile"
        await _answer(server, device, sent)  # confirmed: the old one goes
        sent = await _next(server, device)
        assert sent["Command"] == {"RequestType": "RemoveProvisioningProfile", "UUID": old}
        await _answer(server, device, sent)
        sent = await _next(server, device)  # what it holds now
        assert sent["Command"]["RequestType"] == "ProvisioningProfileList"
        await _answer(server, device, sent, ProvisioningProfileList=_listing(new))
    assert await _states(server, new) == {"UDID-A": "installed", "UDID-B": "installed"}
    assert await _states(server, old) == {
        "UDID-A": "removed", "UDID-B": "removed", "UDID-D": "removed"
    }  # fmt: skip
    assert await storage.provisioning_holders(old) == []

    # A holder seen later (C installs an app that brought the old profile) gets the renewal.
    await server.queue("ProvisioningProfileList", {}, c)
    await _answer(server, c, await _next(server, c), ProvisioningProfileList=_listing(old))
    sent = await _next(server, c)
    assert sent["Command"]["RequestType"] == "InstallProvisioningProfile"
    assert sent["Command"]["ProvisioningProfile"] == renewed.profile.body


async def test_an_older_profile_renews_nothing_and_remove_forgets(server: Server) -> None:
    library = _library(server)
    (a,) = await _enrolled(server, "A")
    new = (await library.upload(_profile(300))).profile.uuid
    late = await library.upload(_profile(100))
    assert (late.replaces, late.installs) == ([], 0)
    assert late.profile.replaced_by == new
    assert any("expires later" in w for w in late.warnings)

    await library.assign(new, everyone=True)
    await _answer(server, a, await _next(server, a))
    (late_comer,) = await _enrolled(server, "E")  # enrolled afterwards: given it at once
    assert (await _next(server, late_comer))["Command"]["RequestType"] == (
        "InstallProvisioningProfile"
    )
    done = await library.remove(new)
    assert done.removals == 2  # A had it, E was being given it
    sent = await _next(server, a)
    assert sent["Command"] == {"RequestType": "RemoveProvisioningProfile", "UUID": new}
    assert await server.services.storage.get_provisioning_profile(new) is None
    stands = await server.services.storage.get_provisioning_profile(late.profile.uuid)
    assert stands is not None
    assert stands.replaced_by is None  # on its own again
    with pytest.raises(LookupError):
        await library.remove(new)
