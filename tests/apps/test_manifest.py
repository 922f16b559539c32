"""orchardist.apps.manifest: the manifest devices read, the itms-services link, and the
words for hostnames and device errors that stop an install."""

from __future__ import annotations

import plistlib
from urllib.parse import parse_qs, urlsplit

import pytest

from orchardist.apps.manifest import (
    explain_install_error,
    itms_services_link,
    manifest_plist,
    public_url_warning,
)

IPA_URL = "https://mdm.example.com/apps/files/ab.ipa?token=1767225600.abc_-"


def test_the_manifest_has_apples_shape() -> None:
    body = manifest_plist(
        "com.example.expenses",
        "2.3.1",
        "Expenses & Co <beta>",
        IPA_URL,
        display_image_url="https://mdm.example.com/icon57.png",
        full_size_image_url="https://mdm.example.com/icon512.png",
    )
    assert body.startswith(b"<?xml")  # XML: what Xcode writes and every iOS reads
    (item,) = plistlib.loads(body)["items"]
    assert item["assets"] == [
        {"kind": "software-package", "url": IPA_URL},
        {"kind": "display-image", "url": "https://mdm.example.com/icon57.png"},
        {"kind": "full-size-image", "url": "https://mdm.example.com/icon512.png"},
    ]
    assert item["metadata"] == {
        "bundle-identifier": "com.example.expenses",
        "bundle-version": "2.3.1",
        "kind": "software",
        "title": "Expenses & Co <beta>",
    }


def test_images_are_optional() -> None:
    (item,) = plistlib.loads(manifest_plist("a.b", "1", "A", IPA_URL))["items"]
    assert item["assets"] == [{"kind": "software-package", "url": IPA_URL}]


def test_the_install_link_carries_the_manifest_url_whole() -> None:
    manifest_url = "https://mdm.example.com/apps/manifest.plist?token=17.a_b-c&x=1"
    link = itms_services_link(manifest_url)
    assert link.startswith("itms-services://?action=download-manifest&url=https%3A%2F%2F")
    query = parse_qs(urlsplit(link).query)
    assert query == {"action": ["download-manifest"], "url": [manifest_url]}


@pytest.mark.parametrize(
    ("hostname", "says"),
    [
        ("192.168.1.20", "is an IP address"),
        ("10.0.0.1", "is an IP address"),
        ("::1", "is an IP address"),
        ("[2001:db8::1]", "is an IP address"),
        ("localhost", "this machine's own name"),
        ("mdm.localhost", "this machine's own name"),
        ("mdm", "not a fully qualified name"),
        ("mdm.example.com", None),
        ("MDM.Example.COM.", None),
    ],
)
def test_hostnames_devices_refuse_are_warned_about(hostname: str, says: str | None) -> None:
    warning = public_url_warning(hostname)
    if says is None:
        assert warning is None
    else:
        assert warning is not None
        assert says in warning


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            {
                "Status": "Error",
                "ErrorChain": [
                    {
                        "ErrorCode": 2604,
                        "ErrorDomain": "DeviceManagement.error",
                        "LocalizedDescription": "Could not validate manifest. ",
                    }
                ],
            },
            "could not fetch or read the app's manifest",
        ),
        (
            [{"ErrorCode": 850, "ErrorDomain": "ASDErrorDomain"}],
            "not an IP address or localhost",
        ),
        (
            {
                "ErrorChain": [
                    {"ErrorCode": 12, "ErrorDomain": "MCMDMErrorDomain"},
                    {"ErrorCode": -1202, "ErrorDomain": "NSURLErrorDomain"},
                ]
            },
            "does not trust the server's HTTPS certificate",
        ),
        ({"RejectionReason": "CouldNotVerifyAppID"}, "could not verify the app"),
        ({"RejectionReason": "SomethingNew"}, "refused the installation (SomethingNew)"),
        ({"State": "UserRejected"}, "the user declined the installation"),
        (
            {
                "ErrorChain": [
                    {
                        "ErrorCode": 4,
                        "ErrorDomain": "SomeDomain",
                        "USEnglishDescription": "Something odd.",
                    }
                ]
            },
            "the device answered SomeDomain 4: Something odd.",
        ),
    ],
)
def test_install_errors_in_plain_words(answer: object, says: str) -> None:
    explained = explain_install_error(answer)  # type: ignore[arg-type]
    assert explained is not None
    assert says in explained


@pytest.mark.parametrize(
    "answer",
    [{"Status": "Acknowledged", "State": "Managed"}, {"State": "Installing"}, {}, []],
)
def test_answers_without_a_failure_explain_nothing(answer: object) -> None:
    assert explain_install_error(answer) is None  # type: ignore[arg-type]
