"""Issue a certificate for a SCEP transaction and record both, in one step shared by the
automatic path (a valid challenge) and the manual one (an administrator's approval)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.metrics import SCEP_ISSUANCES
from orchardist.pki.ca import CertificateAuthority, fingerprint_sha256
from orchardist.pki.csr import CheckedCsr, read_csr
from orchardist.storage import (
    ChallengeOutcome,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
    ScepTransactionStore,
)


@dataclass(frozen=True)
class Binding:
    """What issuance knew of the device: the UDID a one-time challenge was minted for (or
    the renewed certificate's), and the serial a renewal replaces. MDM holds a certificate
    to it (mdm/binding.py)."""

    device_id: str | None = None
    renewal_of: int | None = None


class Issuer:
    def __init__(
        self,
        ca: CertificateAuthority,
        transactions: ScepTransactionStore,
        *,
        validity_days: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._ca = ca
        self._transactions = transactions
        self._validity_days = validity_days
        self._clock = clock

    async def issue(
        self,
        transaction_id: str,
        csr_der: bytes,
        binding: Binding | None = None,
        *,
        checked: CheckedCsr | None = None,
    ) -> x509.Certificate:
        """Certify the CSR and record the certificate, with its binding, and its ISSUED
        transaction. `checked` is the CSR already read from `csr_der`, when the caller has
        it. CsrError (a ValueError) when the CSR is refused; nothing is recorded."""
        binding = binding or Binding()
        now = self._clock()
        request = checked or read_csr(csr_der)
        cert = self._ca.certify(request, validity_days=self._validity_days, now=now)
        await self._transactions.record_issued(
            record_of(cert, binding),
            ScepTransaction(
                transaction_id=transaction_id,
                status=ScepTransactionStatus.ISSUED,
                csr_der=csr_der,
                created_at=now,
                certificate_serial=cert.serial_number,
                device_id=binding.device_id,
                renewal_of=binding.renewal_of,
            ),
        )
        SCEP_ISSUANCES.labels("issued").inc()
        return cert

    async def enrol(
        self, transaction_id: str, csr_der: bytes, checked: CheckedCsr, challenge_sha256: str | None
    ) -> x509.Certificate | ScepTransaction | ChallengeOutcome:
        """A PKCSReq's certificate, recorded with the challenge consumed in one transaction
        (`ScepTransactionStore.record_enrolment`): the certificate when recorded, the
        earlier transaction for a resent request, or why the challenge was refused.

        The certificate is signed before the transaction, so a request refused there cost
        one private-key operation for nothing; the database is visited once instead of
        three times for every certificate issued."""
        now = self._clock()
        cert = self._ca.certify(checked, validity_days=self._validity_days, now=now)
        tx = ScepTransaction(
            transaction_id=transaction_id,
            status=ScepTransactionStatus.ISSUED,
            csr_der=csr_der,
            created_at=now,
            certificate_serial=cert.serial_number,
        )
        result = await self._transactions.record_enrolment(
            record_of(cert), tx, challenge_sha256, now
        )
        if result != ChallengeOutcome.CONSUMED:
            return result
        SCEP_ISSUANCES.labels("issued").inc()
        return cert


def record_of(cert: x509.Certificate, binding: Binding | None = None) -> IssuedCertificate:
    binding = binding or Binding()
    return IssuedCertificate(
        serial=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=fingerprint_sha256(cert),
        der=cert.public_bytes(Encoding.DER),
        device_id=binding.device_id,
        renewal_of=binding.renewal_of,
    )
