"""Which certificate may speak for which device: the rules an Authenticate must pass.

Any device can hold a certificate from our CA (the static SCEP challenge is enough), so a
valid certificate proves only that it is ours. What ties it to one UDID:

1. A certificate issued for a device (a one-time challenge minted for that UDID during
   over-the-air enrollment, whose UDID came signed by Apple's device CA; or a renewal of
   such a certificate) authenticates as that device only.
2. A certificate bound to one enrollment — ended or not — never authenticates as another:
   a certificate serves one device, ever.
3. A device whose enrollment has not ended (CheckOut, an administrator's retire, an
   acknowledged EraseDevice) keeps its certificate. It moves to a new one only when the
   new one was issued for its UDID, or renews the bound one (SCEP RenewalReq, signed with
   the bound certificate's key). Nothing else an attacker holding another device's
   certificate can present passes.

Each refusal names the device the certificate belongs to, for the log line.

A move allowed by rule 3 is a renewal (`renews`) only when the new certificate renews the
bound one: a RenewalReq signed with it, or a challenge minted to renew it (mdm/renewal.py,
which re-delivers the profile through the bound identity). Then the enrollment goes on with
the new certificate — still enrolled, its queue kept — and the old certificate, no longer the
bound one, is refused from then on (a device holds one identity for its MDM payload, and two
live keys speaking for one device would be one more to steal). Such a certificate may even
announce itself without an Authenticate (`renews_silently`): the bound identity vouched for
it. A certificate merely issued for the UDID (re-enrolled over the air or with a one-time
link, without a CheckOut: wiped by hand, say) starts a new enrollment, as Apple has any
Authenticate do: its queue is cancelled, so an EraseDevice or DeviceLock queued for the old
enrollment never reaches the freshly set-up device.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchardist.storage import BindingState, IssuedCertificate


@dataclass(frozen=True)
class BindingRefusal:
    reason: str  # for the 403 body and the log
    certificate_device: str | None  # the device the certificate is issued for or bound to


def authenticate_refusal(
    device_id: str, presented: IssuedCertificate, state: BindingState
) -> BindingRefusal | None:
    """None when `presented` may bind `device_id`'s enrollment; else why not. `state`: what
    binds the certificate and the device (EnrollmentStore.binding_state)."""
    bound_elsewhere = state.bound_elsewhere
    if presented.device_id is not None and presented.device_id != device_id:
        return BindingRefusal(
            f"this certificate was issued for device {presented.device_id}, not {device_id}",
            presented.device_id,
        )
    if bound_elsewhere is not None:
        return BindingRefusal(
            f"this certificate belongs to device {bound_elsewhere} and cannot authenticate "
            f"as {device_id}",
            bound_elsewhere,
        )
    if state.current_sha256 is None or state.current_ended:
        return None
    if state.current_sha256 == presented.sha256:
        return None  # the same device authenticating again
    if presented.device_id == device_id:
        return None  # re-enrolled over the air: the new certificate names this UDID
    if state.current_serial is not None and presented.renewal_of == state.current_serial:
        return None
    return BindingRefusal(
        f"device {device_id} is enrolled with another certificate; it moves to a new one "
        "only after it checks out or an administrator retires it "
        f"(orchardist device retire {device_id} --yes --forget)",
        None,
    )


def renews(presented: IssuedCertificate, state: BindingState) -> bool:
    """Whether an Authenticate that `authenticate_refusal` let through moves a live
    enrollment to a new certificate (a renewal) rather than starting a new one: only when
    `presented` renews the bound certificate, never because it names the UDID."""
    return (
        state.current_sha256 is not None
        and not state.current_ended
        and state.current_sha256 != presented.sha256
        and state.current_serial is not None
        and presented.renewal_of == state.current_serial
    )


def renews_silently(presented: IssuedCertificate, state: BindingState) -> bool:
    """Whether a request other than Authenticate, signed by `presented`, may move the live
    enrollment to it: only a certificate renewing the bound one (a SCEP RenewalReq's, RFC
    8894 §3.3.1.2: the request was signed with the bound certificate's key; or a renewal
    challenge's, delivered through the bound identity), never one merely issued for the
    UDID."""
    return (
        state.current_sha256 is not None
        and not state.current_ended
        and state.bound_elsewhere is None
        and state.current_serial is not None
        and presented.renewal_of == state.current_serial
    )
