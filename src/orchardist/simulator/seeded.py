"""A fleet written straight into the database (`orchardist simulate seed`), as the file
the simulator plays it from (`orchardist simulate --fleet FILE`).

Enrolling 100,000 virtual devices over SCEP would take hours; seeding writes what the
server itself would have written after each device's SCEP request, Authenticate and
TokenUpdate. Devices `first` … `first + len(certificates) - 1` (made_up.py, kind SEEDED)
can check in: each has a certificate of its own, issued by the server's CA for its UDID,
over one RSA key the whole fleet shares — the server verifies each signature against the
certificate the request carries and knows nothing of other devices' keys, so it cannot
tell. The file holds that key in the clear: it is a test fleet's, good for nothing else.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki.ca import CertificateAuthority
from orchardist.pki.csr import CheckedCsr
from orchardist.simulator.profile import EnrollmentPlan

FORMAT = "orchardist-seeded-fleet/1"


class FleetFileError(ValueError):
    """Not a fleet file this simulator can play; str(err) says why."""


@dataclass(frozen=True)
class SeededFleet:
    plan: EnrollmentPlan  # where the devices check in (from the enrollment profile)
    key: rsa.RSAPrivateKey  # the one key behind every certificate
    first: int  # the number of the first device
    certificates: tuple[bytes, ...]  # DER, device first + i's at i

    def save(self, path: Path) -> None:
        key_pem = self.key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        document = {
            "format": FORMAT,
            "plan": _plan_json(self.plan),
            "key": key_pem.decode(),
            "first": self.first,
            "certificates": [base64.b64encode(der).decode() for der in self.certificates],
        }
        path.write_text(json.dumps(document))

    @classmethod
    def load(cls, path: Path) -> SeededFleet:
        try:
            document = json.loads(path.read_text())
            if document.get("format") != FORMAT:
                raise FleetFileError(f"not a {FORMAT} file")
            key = serialization.load_pem_private_key(document["key"].encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise FleetFileError("its key is not an RSA key")
            return cls(
                plan=_plan_of(document["plan"]),
                key=key,
                first=int(document["first"]),
                certificates=tuple(base64.b64decode(c) for c in document["certificates"]),
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, FleetFileError):
                raise
            raise FleetFileError(f"cannot read {path}: {exc}") from exc


def _plan_json(plan: EnrollmentPlan) -> dict[str, Any]:
    return {
        "scep_url": plan.scep_url,
        "challenge": plan.challenge,
        "key_size": plan.key_size,
        "checkin_url": plan.checkin_url,
        "server_url": plan.server_url,
        "topic": plan.topic,
        "anchors": [cert.public_bytes(Encoding.PEM).decode() for cert in plan.anchors],
    }


def _plan_of(fields: dict[str, Any]) -> EnrollmentPlan:
    return EnrollmentPlan(
        scep_url=str(fields["scep_url"]),
        challenge=fields["challenge"],
        key_size=int(fields["key_size"]),
        checkin_url=str(fields["checkin_url"]),
        server_url=str(fields["server_url"]),
        topic=str(fields["topic"]),
        anchors=tuple(x509.load_pem_x509_certificate(pem.encode()) for pem in fields["anchors"]),
    )


def certify(
    ca: CertificateAuthority,
    key: rsa.RSAPrivateKey,
    udid: str,
    *,
    validity_days: int,
    now: datetime,
) -> x509.Certificate:
    """A device identity for `udid` over `key`, as SCEP issues one (scep/issuance.py) for a
    CSR with that subject and key: one private-key operation of the CA's."""
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, udid)])
    request = CheckedCsr(subject, key.public_key(), None, None)
    return ca.certify(request, validity_days=validity_days, now=now)
