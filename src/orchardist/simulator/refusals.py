"""How a virtual device refuses a command: Status "Error" with an ErrorChain, each link an
ErrorDomain, ErrorCode and description as real devices send them.

Codes used, with the words iOS gives them (DeviceManagement's error table, DMFErrors):
2208 "An installation failed.", 2601 "The app is not managed.", 2604 "Could not validate
manifest.", 2606 "Could not validate app identifier.", 2608 "An iTunes Store login is
required.", 2800 "Cannot install provisioning profile."; ASDErrorDomain 850 "The manifest
URL isn't external" (what a device answers for an http:// ManifestURL); NSURLErrorDomain
codes below a failed download (-1001 timed out, -1003 host not found, -1004 cannot
connect, -1005 connection lost, -1202 untrusted certificate); MCProfileErrorDomain for
configuration profiles. The first link's description also says what was found, so
whoever reads the server's copy of the answer knows what to fix.
"""

from __future__ import annotations

from typing import Any

DEVICE_MANAGEMENT = "DeviceManagement.error"  # DMF's domain, as devices spell it
APP_STORE = "ASDErrorDomain"
URL_LOADING = "NSURLErrorDomain"
PROFILES = "MCProfileErrorDomain"

Link = tuple[str, int, str]  # (ErrorDomain, ErrorCode, description)


class CommandRefusedError(Exception):
    """A command the device answers with Status Error; `chain()` is its ErrorChain."""

    def __init__(self, *links: Link) -> None:
        super().__init__(links[0][2] if links else "refused")
        self.links = links

    def chain(self) -> list[dict[str, Any]]:
        return [
            {
                "ErrorDomain": domain,
                "ErrorCode": code,
                "LocalizedDescription": text,
                "USEnglishDescription": text,
            }
            for domain, code, text in self.links
        ]


def refused(domain: str, code: int, text: str, *below: Link) -> CommandRefusedError:
    """The refusal whose first link is (domain, code, text), then the causes `below`."""
    return CommandRefusedError((domain, code, text), *below)


def install_failed(why: str, *below: Link) -> CommandRefusedError:
    """DeviceManagement 2208 "An installation failed.", saying why."""
    return refused(DEVICE_MANAGEMENT, 2208, f"An installation failed: {why}.", *below)
