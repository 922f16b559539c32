"""The manifest devices read to install an in-house app, the itms-services link, and the
words for what goes wrong.

Manifest (protocol notes §3i; Apple's other/manifesturl.yaml): one item whose `assets`
name the .ipa (kind "software-package") and optionally a small "display-image" (shown while
installing) and a "full-size-image", and whose `metadata` holds bundle-identifier,
bundle-version, kind "software" and title. Every URL must be HTTPS with a certificate the
device trusts. The same manifest serves the Safari link
(`itms-services://?action=download-manifest&url=…`) and MDM's InstallApplication
ManifestURL.

A device that cannot use the manifest URL answers with errors that say little:
"Could not validate manifest" (DeviceManagement 2604: it could not fetch or parse it) and
"The manifest URL isn't external" (ASDErrorDomain 850: the host is an IP address or a
local name). `public_url_warning` spots the second before any device tries;
`explain_install_error` turns a device's answer into what to do.
"""

from __future__ import annotations

import ipaddress
import plistlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote


def manifest_plist(
    bundle_id: str,
    version: str,
    title: str,
    ipa_url: str,
    display_image_url: str | None = None,
    full_size_image_url: str | None = None,
    *,
    ipa_sha256: str | None = None,
    ipa_size: int | None = None,
) -> bytes:
    """The manifest as XML plist bytes (serve as text/xml or application/xml). With
    `ipa_sha256` and `ipa_size` the software-package carries `sha256-size` (the chunk size:
    the whole file, one chunk) and `sha256s` (that chunk's hash), so the device checks the
    download (Apple's other/manifesturl.yaml)."""
    package: dict[str, Any] = {"kind": "software-package", "url": ipa_url}
    if ipa_sha256 is not None and ipa_size is not None:
        package["sha256-size"] = ipa_size
        package["sha256s"] = [ipa_sha256]
    assets: list[dict[str, Any]] = [package]
    if display_image_url is not None:
        assets.append({"kind": "display-image", "url": display_image_url})
    if full_size_image_url is not None:
        assets.append({"kind": "full-size-image", "url": full_size_image_url})
    metadata = {
        "bundle-identifier": bundle_id,
        "bundle-version": version,
        "kind": "software",
        "title": title,
    }
    return plistlib.dumps({"items": [{"assets": assets, "metadata": metadata}]})


def itms_services_link(manifest_url: str) -> str:
    """The link Safari hands to the installer; the manifest URL fully percent-encoded (its
    own query string must survive as one parameter)."""
    return f"itms-services://?action=download-manifest&url={quote(manifest_url, safe='')}"


def public_url_warning(hostname: str) -> str | None:
    """Why devices will refuse manifests served under `hostname`, or None when it looks
    like a public name (we cannot tell from here whether devices resolve it)."""
    host = hostname.strip().strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (
            f"{hostname} is an IP address: iOS installs apps only from a manifest URL with a "
            "DNS name (devices answer \"The manifest URL isn't external\"). Set the server's "
            "hostname to a name devices resolve, with a certificate they trust."
        )
    if host == "localhost" or host.endswith(".localhost"):
        return (
            f"{hostname} is this machine's own name: devices cannot reach it. Set the "
            "server's hostname to a DNS name devices resolve."
        )
    if "." not in host:
        return (
            f"{hostname} is not a fully qualified name: iOS refuses manifest URLs on "
            "single-label hosts. Use the server's full DNS name (mdm.example.com)."
        )
    return None


# (ErrorDomain, ErrorCode) -> words. Devices send the domain as "DeviceManagement.error";
# a bare "DeviceManagement" is read as the same.
_KNOWN_ERRORS: Mapping[tuple[str, int], str] = {
    ("DeviceManagement.error", 2604): (
        "the device could not fetch or read the app's manifest (\"Could not validate "
        "manifest\"). Check that the server's public hostname and port are reachable from "
        "the device over HTTPS with a certificate it trusts, and that the app's links have "
        "not expired, then install again."
    ),
    ("ASDErrorDomain", 850): (
        "the device refused the manifest URL as not external (\"The manifest URL isn't "
        'external"): it must be https:// on a DNS name, not an IP address or localhost. '
        "Set the server's hostname to a name devices resolve, then install again."
    ),
    ("NSURLErrorDomain", -1202): (
        "the device does not trust the server's HTTPS certificate. Install the CA that "
        "issued it on the device (a certificate payload) or use a publicly trusted one."
    ),
    ("NSURLErrorDomain", -1003): (
        "the device could not resolve the server's hostname. Check the DNS name devices use."
    ),
    ("NSURLErrorDomain", -1004): (
        "the device could not connect to the server. Check the public port and firewall."
    ),
    ("NSURLErrorDomain", -1001): (
        "the download timed out. Check the device's network; it will be retried."
    ),
    ("NSURLErrorDomain", -1009): "the device was offline. It will be retried.",
}
_REJECTIONS: Mapping[str, str] = {
    "AppAlreadyInstalled": (
        "the app is already installed on the device and not managed: the user may remove "
        "it, or allow management when asked, then install again."
    ),
    "AppAlreadyQueued": "an installation of the app is already waiting on the device.",
    "CouldNotVerifyAppID": (
        "the device could not verify the app: the .ipa's signature or provisioning profile "
        "does not match it. Upload a build signed with a valid in-house profile."
    ),
    "NotAnApp": "the device found no app at the manifest's software-package URL.",
    "NotSupported": "this device does not support installing this app (device family or OS).",
    "ManagementChangeNotSupported": "the device cannot change this app's management.",
    "AppStoreDisabled": "app installation is disabled on the device by a restriction.",
}
_FAILED_STATES: Mapping[str, str] = {
    "UserRejected": "the user declined the installation.",
    "UpdateRejected": "the user declined the update.",
    "ManagementRejected": "the user declined to let the app be managed.",
    "Failed": "the installation failed on the device.",
}


def explain_install_error(answer: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str | None:
    """Plain words for a failed InstallApplication: `answer` is the device's result dict
    (its ErrorChain, RejectionReason or State) or an ErrorChain list. None when the answer
    shows no failure."""
    if isinstance(answer, Mapping):
        chain = answer.get("ErrorChain")
        rejection, state = answer.get("RejectionReason"), answer.get("State")
    else:
        chain, rejection, state = answer, None, None
    listed = chain if isinstance(chain, list | tuple) else ()
    links = [link for link in listed if isinstance(link, Mapping)]
    for link in links:
        known = _KNOWN_ERRORS.get(_domain_and_code(link))
        if known is not None:
            return known
    if isinstance(rejection, str) and rejection in _REJECTIONS:
        return _REJECTIONS[rejection]
    if links:
        first = links[0]
        said = first.get("USEnglishDescription") or first.get("LocalizedDescription")
        domain, code = _domain_and_code(first)
        return f"the device answered {domain} {code}: {said or 'no description'}."
    if isinstance(rejection, str) and rejection:
        return f"the device refused the installation ({rejection})."
    if isinstance(state, str) and state in _FAILED_STATES:
        return _FAILED_STATES[state]
    return None


def _domain_and_code(link: Mapping[str, Any]) -> tuple[str, int]:
    domain = str(link.get("ErrorDomain", ""))
    if domain == "DeviceManagement":
        domain = "DeviceManagement.error"
    code = link.get("ErrorCode")
    return domain, code if isinstance(code, int) else 0
