"""orchardist.apps.webclip: the catalog's Web Clip passes Apple's schema with unknown keys
as errors, names the catalog on the public base URL with its title and icon, full screen
and removable, under an identifier made from the hostname; building it again gives the
same profile."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from orchardist.apps.webclip import catalog_clip_identifier, catalog_web_clip
from orchardist.profiles.validate import check_profile

BASE = "https://mdm.example.com:8443"


def _clip() -> dict[str, Any]:
    return catalog_web_clip(base_url=BASE, title="App Catalog", organization="Example Corp")


def test_the_clip_passes_apples_schema() -> None:
    report = check_profile(_clip(), unknown_keys_are_errors=True)
    assert report.errors == []
    assert report.warnings == []


def test_the_clip_opens_the_catalog_full_screen() -> None:
    profile = _clip()
    (clip,) = profile["PayloadContent"]
    assert clip["PayloadType"] == "com.apple.webClip.managed"
    assert clip["Label"] == "App Catalog"
    assert clip["URL"] == "https://mdm.example.com:8443/apps"
    assert (clip["FullScreen"], clip["IsRemovable"]) == (True, True)
    icon = Image.open(io.BytesIO(clip["Icon"]))
    assert (icon.format, icon.size) == ("PNG", (180, 180))
    assert profile["PayloadIdentifier"] == "com.example.mdm.app-catalog"
    assert profile["PayloadOrganization"] == "Example Corp"


def test_building_it_again_gives_the_same_profile() -> None:
    assert _clip() == _clip()
    other = catalog_web_clip(base_url="https://mdm.other.test", title="Apps", organization="O")
    assert other["PayloadUUID"] != _clip()["PayloadUUID"]


@pytest.mark.parametrize(
    ("base_url", "identifier"),
    [
        ("https://mdm.example.com", "com.example.mdm.app-catalog"),
        ("https://MDM.Example.com.:443", "com.example.mdm.app-catalog"),
        ("https://localhost:8443", "localhost.app-catalog"),
        ("https://192.0.2.7", "org.orchardist.app-catalog"),
        ("https://[2001:db8::1]:8443", "org.orchardist.app-catalog"),
    ],
)
def test_the_identifier_is_the_hostname_reversed(base_url: str, identifier: str) -> None:
    assert catalog_clip_identifier(base_url) == identifier
