"""A virtual device answers the in-house app commands as an iPhone would: InstallApplication
fetches the manifest over HTTPS (trusting the CA its enrollment profile carries), checks
the .ipa against it (hash, bundle id, version) and lists the app afterwards;
RemoveApplication; and the three provisioning-profile commands. Driven in process, with a
real HTTPS file server and .ipa files from the apps test factory; the last test installs
from the server's own signed manifest and .ipa routes (through its ASGI app)."""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchardist.apps.manifest import explain_install_error, manifest_plist
from orchardist.simulator.app_download import DownloadLimits
from orchardist.simulator.device import VirtualDevice
from orchardist.simulator.profile import EnrollmentPlan, tls_trust
from tests.apps.factory import build_ipa, build_mobileprovision
from tests.keys import rsa_key
from tests.server import free_port
from tests.simulator.https_files import FileServer, app_server_ca, serving_files
from tests.web.mdm_server import Server
from tests.web.stored_apps import store_app

pytestmark = pytest.mark.anyio
BUNDLE_ID = "com.example.expenses"


@dataclass
class Bench:
    device: VirtualDevice
    files: FileServer
    tmp_path: Path

    def publish(
        self,
        ipa: Path,
        *,
        bundle_id: str = BUNDLE_ID,
        version: str = "1.0",
        sha256: str | None = None,
        chunk: int | None = None,
    ) -> str:
        """Serve `ipa` and its manifest (as the server writes it: one sha256 over the whole
        file unless `chunk` cuts it); the manifest's URL."""
        data = ipa.read_bytes()
        self.files.files[f"/{ipa.name}"] = data
        plist = plistlib.loads(
            manifest_plist(bundle_id, version, "Expenses", f"{self.files.base}/{ipa.name}")
        )
        size = chunk or len(data)
        hashes = [hashlib.sha256(data[i : i + size]).hexdigest() for i in range(0, len(data), size)]
        plist["items"][0]["assets"][0] |= {"sha256-size": size, "sha256s": [sha256] if sha256
                                           else hashes}  # fmt: skip
        self.files.files[f"/{ipa.name}.plist"] = plistlib.dumps(plist)
        return f"{self.files.base}/{ipa.name}.plist?t=token"

    async def send(self, request_type: str, **params: Any) -> dict[str, Any]:
        return await self.device.respond("C-1", {"RequestType": request_type, **params})

    async def install(self, url: str) -> dict[str, Any]:
        return await self.send("InstallApplication", ManifestURL=url, ManagementFlags=1)


def _plan(anchors: bool = True) -> EnrollmentPlan:
    return EnrollmentPlan(
        scep_url="https://mdm.example.com/scep", challenge=None, key_size=2048,
        checkin_url="https://mdm.example.com/mdm/checkin",
        server_url="https://mdm.example.com/mdm/connect", topic="com.apple.mgmt.test",
        anchors=(app_server_ca().cert,) if anchors else (),
    )  # fmt: skip


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    plan = _plan()
    async with httpx.AsyncClient(verify=tls_trust(plan)) as http:
        with serving_files(tmp_path) as files:
            yield Bench(VirtualDevice(plan, 1, rsa_key(40), http), files, tmp_path)


def _error(answer: dict[str, Any]) -> tuple[str, int, str]:
    assert answer["Status"] == "Error", answer
    first = answer["ErrorChain"][0]
    return first["ErrorDomain"], first["ErrorCode"], first["USEnglishDescription"]


async def _listed(bench: Bench) -> tuple[dict[str, Any], dict[str, Any]]:
    installed = await bench.send("InstalledApplicationList")
    managed = await bench.send("ManagedApplicationList")
    by_id = {item["Identifier"]: item for item in installed["InstalledApplicationList"]}
    return by_id, managed["ManagedApplicationList"]


async def test_an_app_whose_manifest_checks_out_is_installed_and_listed(bench: Bench) -> None:
    ipa = build_ipa(bench.tmp_path / "Expenses.ipa", version="1.4", build="140")
    answer = await bench.install(bench.publish(ipa, version="1.4"))
    assert answer == {"Status": "Acknowledged", "CommandUUID": "C-1",
                      "Identifier": BUNDLE_ID, "State": "Managed"}  # fmt: skip
    assert bench.files.requests == ["/Expenses.ipa.plist", "/Expenses.ipa"]
    installed, managed = await _listed(bench)
    app = installed[BUNDLE_ID]
    assert (app["Name"], app["ShortVersion"], app["Version"]) == ("Expenses", "1.4", "140")
    assert app["BundleSize"] > 0
    assert "com.apple.mobilesafari" in installed  # the user's own apps stay listed
    assert managed == {
        BUNDLE_ID: {"Status": "Managed", "ManagementFlags": 1, "HasConfiguration": False,
                    "HasFeedback": False, "IsValidated": True, "ExternalVersionIdentifier": 0}
    }  # fmt: skip


async def test_the_lists_narrow_to_what_is_asked(bench: Bench) -> None:
    await bench.install(bench.publish(build_ipa(bench.tmp_path / "Expenses.ipa")))
    only = await bench.send("InstalledApplicationList", ManagedAppsOnly=True, Items=["Name"])
    assert only["InstalledApplicationList"] == [{"Identifier": BUNDLE_ID, "Name": "Expenses"}]
    none = await bench.send("ManagedApplicationList", Identifiers=["com.example.other"])
    assert none["ManagedApplicationList"] == {}


async def test_a_new_version_replaces_the_installed_one(bench: Bench) -> None:
    await bench.install(bench.publish(build_ipa(bench.tmp_path / "Expenses.ipa")))
    newer = build_ipa(bench.tmp_path / "Expenses-2.ipa", version="2.0", build="200")
    assert (await bench.install(bench.publish(newer, version="2.0")))["State"] == "Managed"
    installed, managed = await _listed(bench)
    assert installed[BUNDLE_ID]["ShortVersion"] == "2.0"
    assert list(managed) == [BUNDLE_ID]


async def test_hashes_are_checked_chunk_by_chunk(bench: Bench) -> None:
    ipa = build_ipa(bench.tmp_path / "Expenses.ipa")
    assert (await bench.install(bench.publish(ipa, chunk=1000)))["Status"] == "Acknowledged"


async def test_a_download_that_does_not_match_the_hash_is_refused(bench: Bench) -> None:
    url = bench.publish(build_ipa(bench.tmp_path / "Expenses.ipa"), sha256="00" * 32)
    answer = await bench.install(url)
    domain, code, text = _error(answer)
    assert (domain, code) == ("DeviceManagement.error", 2208)
    assert "does not match the manifest's sha256s" in text
    assert "00" * 32 in text
    assert "does not match the manifest's sha256s" in (explain_install_error(answer) or "")
    assert "t=token" not in repr(answer)  # the signed link's token stays out of the record
    assert (await _listed(bench))[1] == {}


async def test_a_download_that_is_no_ipa_is_refused(bench: Bench) -> None:
    fake = bench.tmp_path / "Expenses.ipa"
    fake.write_bytes(b"<html>Sign in</html>")  # what a captive portal might hand over
    domain, code, text = _error(await bench.install(bench.publish(fake)))
    assert (domain, code) == ("DeviceManagement.error", 2208)
    assert "is not a readable .ipa" in text


async def test_a_bundle_id_other_than_the_manifests_is_refused(bench: Bench) -> None:
    ipa = build_ipa(bench.tmp_path / "Other.ipa", bundle_id="com.example.other")
    domain, code, text = _error(await bench.install(bench.publish(ipa)))
    assert (domain, code) == ("DeviceManagement.error", 2606)
    assert "'com.example.expenses'" in text
    assert "'com.example.other'" in text
    installed, managed = await _listed(bench)
    assert "com.example.other" not in installed
    assert managed == {}


async def test_a_version_other_than_the_manifests_is_refused(bench: Bench) -> None:
    ipa = build_ipa(bench.tmp_path / "Expenses.ipa", version="1.1")
    domain, code, text = _error(await bench.install(bench.publish(ipa, version="1.2")))
    assert (domain, code) == ("DeviceManagement.error", 2208)
    assert "bundle-version is '1.2'" in text
    assert "'1.1'" in text


async def test_an_http_manifest_url_is_refused_unfetched(bench: Bench) -> None:
    url = bench.publish(build_ipa(bench.tmp_path / "Expenses.ipa")).replace("https:", "http:")
    answer = await bench.install(url)
    assert _error(answer)[:2] == ("ASDErrorDomain", 850)
    assert "isn't external" in (explain_install_error(answer) or "")
    assert bench.files.requests == []


async def test_an_unreachable_manifest_cannot_be_validated(bench: Bench) -> None:
    answer = await bench.install(f"https://127.0.0.1:{free_port()}/apps/manifest.plist")
    assert _error(answer)[:2] == ("DeviceManagement.error", 2604)
    assert answer["ErrorChain"][1]["ErrorDomain"] == "NSURLErrorDomain"
    assert answer["ErrorChain"][1]["ErrorCode"] == -1004
    assert "Could not validate manifest" in (explain_install_error(answer) or "")


async def test_a_missing_or_malformed_manifest_cannot_be_validated(bench: Bench) -> None:
    missing = await bench.install(f"{bench.files.base}/gone.plist")
    assert "the server answered 404" in _error(missing)[2]
    bench.files.files["/bad.plist"] = plistlib.dumps({"items": [{"assets": []}]})
    bad = await bench.install(f"{bench.files.base}/bad.plist")
    assert _error(bad)[:2] == ("DeviceManagement.error", 2604)
    assert "software-package" in _error(bad)[2]


async def test_a_server_the_enrollment_profile_does_not_vouch_for_is_not_trusted(
    tmp_path: Path,
) -> None:
    plan = _plan(anchors=False)  # the profile carried no CA: system trust only
    async with httpx.AsyncClient(verify=tls_trust(plan)) as http:
        with serving_files(tmp_path) as files:
            bench = Bench(VirtualDevice(plan, 2, rsa_key(40), http), files, tmp_path)
            answer = await bench.install(bench.publish(build_ipa(tmp_path / "Expenses.ipa")))
    assert _error(answer)[:2] == ("DeviceManagement.error", 2604)
    assert answer["ErrorChain"][1]["ErrorCode"] == -1202


async def test_an_app_larger_than_the_device_takes_is_refused(tmp_path: Path) -> None:
    plan = _plan()
    async with httpx.AsyncClient(verify=tls_trust(plan)) as http:
        with serving_files(tmp_path) as files:
            device = VirtualDevice(plan, 3, rsa_key(40), http,
                                   app_limits=DownloadLimits(ipa_bytes=1000))  # fmt: skip
            bench = Bench(device, files, tmp_path)
            answer = await bench.install(bench.publish(build_ipa(tmp_path / "Expenses.ipa")))
    assert "more than the 1,000 this device downloads" in _error(answer)[2]


async def test_an_app_store_install_needs_an_account_the_device_lacks(bench: Bench) -> None:
    answer = await bench.send("InstallApplication", iTunesStoreID=361309726)
    assert _error(answer)[:2] == ("DeviceManagement.error", 2608)


async def test_remove_application_removes_only_managed_apps(bench: Bench) -> None:
    await bench.install(bench.publish(build_ipa(bench.tmp_path / "Expenses.ipa")))
    removed = await bench.send("RemoveApplication", Identifier=BUNDLE_ID)
    assert removed == {"Status": "Acknowledged", "CommandUUID": "C-1"}
    installed, managed = await _listed(bench)
    assert BUNDLE_ID not in installed
    assert managed == {}
    again = await bench.send("RemoveApplication", Identifier=BUNDLE_ID)
    assert _error(again) == ("DeviceManagement.error", 2601, "The app is not managed.")
    users = await bench.send("RemoveApplication", Identifier="com.apple.mobilesafari")
    assert _error(users)[1] == 2601


async def test_an_apps_embedded_profile_is_installed_with_it(bench: Bench) -> None:
    embedded = build_mobileprovision(name="Expenses Embedded", profile_uuid="EMBEDDED-1")
    ipa = build_ipa(bench.tmp_path / "Expenses.ipa", provisioning=embedded)
    await bench.install(bench.publish(ipa))
    listed = (await bench.send("ProvisioningProfileList"))["ProvisioningProfileList"]
    assert "EMBEDDED-1" in {item["UUID"] for item in listed}


async def test_provisioning_profiles_are_installed_listed_and_removed(bench: Bench) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    profile = build_mobileprovision(name="Sales In House", profile_uuid="PROV-1",
                                    expires_at=expires)  # fmt: skip
    installed = await bench.send("InstallProvisioningProfile", ProvisioningProfile=profile)
    assert installed == {"Status": "Acknowledged", "CommandUUID": "C-1"}
    listed = (await bench.send("ProvisioningProfileList"))["ProvisioningProfileList"]
    assert {"Name": "Sales In House", "UUID": "PROV-1", "ExpiryDate": expires} in listed
    managed = await bench.send("ProvisioningProfileList", ManagedOnly=True)
    assert [item["UUID"] for item in managed["ProvisioningProfileList"]] == ["PROV-1"]

    removed = await bench.send("RemoveProvisioningProfile", UUID="PROV-1")
    assert removed == {"Status": "Acknowledged", "CommandUUID": "C-1"}
    listed = (await bench.send("ProvisioningProfileList"))["ProvisioningProfileList"]
    assert "PROV-1" not in {item["UUID"] for item in listed}
    again = await bench.send("RemoveProvisioningProfile", UUID="PROV-1")
    assert _error(again)[:2] == ("MCProfileErrorDomain", 1003)


async def test_a_forged_or_garbled_provisioning_profile_is_refused(bench: Bench) -> None:
    genuine = build_mobileprovision(profile_uuid="PROV-2")
    forged = genuine.replace(b"PROV-2", b"PROV-3")  # content no longer matches its signature
    for data in (forged, b"not a profile", "text"):
        answer = await bench.send("InstallProvisioningProfile", ProvisioningProfile=data)
        assert _error(answer)[:2] == ("DeviceManagement.error", 2800)
    listed = (await bench.send("ProvisioningProfileList"))["ProvisioningProfileList"]
    assert not {"PROV-2", "PROV-3"} & {item["UUID"] for item in listed}


async def test_an_app_the_server_serves_installs_through_its_signed_links(
    server: Server, tmp_path: Path
) -> None:
    """The contract with the server's routes: its manifest and .ipa check out on a device."""
    version = await store_app(server.services, tmp_path, version="2.1", build="57")
    urls = server.services.app_urls
    assert urls is not None
    device = VirtualDevice(_plan(), 4, rsa_key(40), server.http)  # the ASGI app behind it
    manifest_url = urls.manifest_url(version.bundle_id, version.version_id)
    sent = {"RequestType": "InstallApplication", "ManagementFlags": 1,
            "ManifestURL": manifest_url}  # fmt: skip
    answer = await device.respond("C-2", sent)
    assert (answer["Status"], answer.get("State")) == ("Acknowledged", "Managed")
    listed = await device.respond("C-3", {"RequestType": "InstalledApplicationList",
                                          "ManagedAppsOnly": True})  # fmt: skip
    (app,) = listed["InstalledApplicationList"]
    assert (app["Identifier"], app["ShortVersion"], app["Version"]) == (BUNDLE_ID, "2.1", "57")
    spoiled = sent | {"ManifestURL": manifest_url.replace("?t=", "?t=x")}  # a forged token
    assert _error(await device.respond("C-4", spoiled))[:2] == ("DeviceManagement.error", 2604)
