"""A stocked virtual device (`simulator.library.Stock`) lists its many apps and certificates
after the usual ones, in the shapes the inventory reader takes."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from orchardist.mdm.inventory import inventory_from
from orchardist.simulator.answers import Identity, answer
from orchardist.simulator.apps import USER_INSTALLED, DeviceApps
from orchardist.simulator.library import Stock, stocked_apps, stocked_certificates
from tests.keys import rsa_key


def test_stocked_apps_follow_the_usual_ones_with_distinct_identifiers() -> None:
    apps = DeviceApps(more_user_apps=Stock(apps=50).installed_apps())
    listed = apps.installed_list({})["InstalledApplicationList"]
    assert len(listed) == len(USER_INSTALLED) + 50
    update = inventory_from("InstalledApplicationList", {"InstalledApplicationList": listed})
    assert update is not None
    assert update.apps is not None
    assert len({app.identifier for app in update.apps}) == len(listed)
    assert all(app.bundle_size for app in update.apps[len(USER_INSTALLED) :])


def test_a_thousand_apps_make_about_a_megabyte() -> None:
    body = plistlib.dumps({"InstalledApplicationList": list(stocked_apps(1000))})
    assert 0.8e6 < len(body) < 1.3e6


def test_stocked_certificates_are_listed_after_the_identity_and_read() -> None:
    me = _identity(stocked_certificates(5))
    listed = answer(me, {"RequestType": "CertificateList"})["CertificateList"]
    assert [item["CommonName"] for item in listed][1:] == [
        f"Stocked Certificate {n}" for n in range(5)
    ]
    for item in listed[1:]:
        assert x509.load_der_x509_certificate(item["Data"]).not_valid_after_utc.year >= 2024


def _identity(more: tuple[dict[str, object], ...]) -> Identity:
    key = rsa_key(0)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "device")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    facts = ("udid", "SERIAL", "iPhone", "iPhone3,1", "MC603", "iPhone", "17.5", "21F79")
    return Identity(*facts, "01", "00:1e:c2:00:00:01", cert, more)
