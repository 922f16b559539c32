"""Replacing the push certificate without stranding devices, shared by `orchardist
pushcert csr|import|test-cert` and the console's Push certificate page.

A device enrolled with a topic can only be woken by a certificate for that topic (Apple,
"Sending MDM push notifications"): `replace` refuses a certificate for another topic while
enrolled devices use one, unless told to go ahead (`--force`, the console's confirmation),
and lets through topics no Apple certificate could wake anyway: the configured placeholder
(no certificate yet) and the local peer's stand-in.

A CSR made on the console keeps its key on the server (`PkiFiles.push_request_key`, never
shown) until the certificate Apple signs for it is imported with it; asking again makes a
CSR for the same key, so a second download cannot orphan the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cryptography import x509

from orchardist.pki.store import PkiFiles
from orchardist.push.certificate import PushCertificate, PushCertificateError, push_csr, stored
from orchardist.storage import EnrollmentStore

CSR_COMMON_NAME = "Orchardist MDM push"


class TopicChangeError(PushCertificateError):
    """Enrolled devices use another topic; nothing was stored. str(err) says which."""

    def __init__(self, enrolled_topic: str, devices: int, new_topic: str) -> None:
        super().__init__(
            f"enrolled devices use topic {enrolled_topic}, this certificate is for {new_topic}"
        )
        self.enrolled_topic, self.devices, self.new_topic = enrolled_topic, devices, new_topic


@dataclass(frozen=True)
class Replaced:
    pushed: PushCertificate
    # Placeholder topic → devices enrolled with it: they cannot be woken with the new
    # certificate and must enroll again to be managed with pushes.
    stranded: dict[str, int] = field(default_factory=dict)


async def replace(
    files: PkiFiles,
    enrollments: EnrollmentStore,
    pushed: PushCertificate,
    *,
    placeholder: str,
    force: bool,
) -> Replaced:
    """Store `pushed` as the push certificate, unless enrolled devices use another topic
    (TopicChangeError) and `force` is False. `placeholder` is the configured apns_topic's
    default, what devices enrolled with before any certificate was imported."""
    enrolled = Counter(e.facts.topic for e in await enrollments.list_enrollments() if e.enrolled)
    enrolled.pop(pushed.topic, None)
    unwakeable = {placeholder}
    current = _current(files)
    if current is not None and current.stand_in:
        unwakeable.add(current.topic)
    blocking = sorted(set(enrolled) - unwakeable)
    if blocking and not force:
        raise TopicChangeError(blocking[0], sum(enrolled[t] for t in blocking), pushed.topic)
    files.save_push(pushed.certificate, pushed.key)
    return Replaced(pushed, {t: enrolled[t] for t in sorted(unwakeable & set(enrolled))})


def request_csr(files: PkiFiles) -> tuple[x509.CertificateSigningRequest, bool]:
    """A CSR for the pending request's key (made and kept now when there is none), and
    whether the key is new."""
    key = files.load_push_request_key()
    made = key is None
    key, csr = push_csr(CSR_COMMON_NAME, key)
    if made:
        files.save_push_request_key(key)
    return csr, made


def request_done(files: PkiFiles) -> None:
    """Its certificate is imported: the key lives on as push.key."""
    files.push_request_key.unlink(missing_ok=True)


def _current(files: PkiFiles) -> PushCertificate | None:
    try:
        return stored(files)
    except PushCertificateError:
        return None  # unreadable: replaced like any other
