"""The app catalog's Web Clip: a configuration profile that puts the catalog on the home
screen (payload com.apple.webClip.managed, Apple's mdm/profiles/com.apple.webClip.managed
.yaml), with its label, the catalog's URL on the public base URL, its icon, full screen and
removable by the user.

It goes into the profile library like any profile (`ProfileLibrary.add` checks it against
Apple's schema), under `catalog_clip_identifier(base_url)`, and is assigned like any:
to `all`, or to `directory:sales` so it comes with every device a sales user enrolls (a
profile assigned to a device's groups is installed at enrollment and named on the /enroll
review page).

The icon is `data/catalog-icon.png` (180 x 180, drawn by tools/catalog_icon.py). UUIDs are
derived from the identifier and URL, so building it again gives the same profile.
"""

from __future__ import annotations

import ipaddress
import uuid
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

ICON = resources.files("orchardist.apps").joinpath("data/catalog-icon.png")
FALLBACK_PREFIX = "org.orchardist"  # when the hostname is an IP address


def catalog_clip_identifier(base_url: str) -> str:
    """`{the hostname reversed}.app-catalog`: mdm.example.com → com.example.mdm.app-catalog."""
    host = (urlsplit(base_url).hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = [label for label in reversed(host.split(".")) if label]
        prefix = ".".join(labels) or FALLBACK_PREFIX
    else:
        prefix = FALLBACK_PREFIX
    return f"{prefix}.app-catalog"


def catalog_web_clip(*, base_url: str, title: str, organization: str) -> dict[str, Any]:
    """The profile (a dictionary for `ProfileLibrary.add`)."""
    identifier = catalog_clip_identifier(base_url)
    url = f"{base_url.rstrip('/')}/apps"
    clip = {
        "PayloadType": "com.apple.webClip.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.webclip",
        "PayloadUUID": _uuid(identifier, url, "webclip"),
        "PayloadDisplayName": title,
        "Label": title,
        "URL": url,
        "Icon": ICON.read_bytes(),
        "FullScreen": True,  # opens as an app of its own, not a Safari tab
        "IsRemovable": True,  # the user may take it off the home screen
        "Precomposed": True,  # the icon is drawn as it should look: no gloss (iOS < 7)
    }
    return {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _uuid(identifier, url, "profile"),
        "PayloadDisplayName": title,
        "PayloadDescription": f"Puts {title} on the home screen: the apps {organization} "
        "offers you, behind your work sign-in.",
        "PayloadOrganization": organization,
        "PayloadContent": [clip],
    }


def _uuid(identifier: str, url: str, part: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{url}#{identifier}/{part}")).upper()
