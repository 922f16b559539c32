"""The SCEP CA service (RFC 8894): bytes in, bytes out, no web framework.

Every request that parses gets a CertRep signed by the responder (the CA, or an RA when
one is configured): SUCCESS with the certificate, or FAILURE with the failInfo RFC 8894
§3.2.1.4 names. Only bodies that are not SCEP at all are refused outright
(`ScepMessageError`, which the web layer turns into a 400).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.metrics import SCEP_ISSUANCES
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, fingerprint_sha256
from orchardist.pki.csr import CheckedCsr, CsrError, read_csr
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Binding, Issuer
from orchardist.scep.messages import (
    FailInfo,
    MessageType,
    PkiStatus,
    ScepMessageError,
    ScepRequest,
    build_cert_rep,
    issued_envelope,
    read_request,
    serial_from_issuer_and_serial,
)
from orchardist.storage import (
    CertificateStatus,
    CertificateStore,
    ChallengeOutcome,
    ScepTransaction,
    ScepTransactionStatus,
    ScepTransactionStore,
)

# Sent one per line. SHA-1 and DES3 are kept for iOS 4-era clients; SCEPStandard promises
# AES, POSTPKIOperation and SHA-256 (RFC 8894 §3.5.2).
CAPABILITIES = (
    "POSTPKIOperation",
    "SHA-1",
    "SHA-256",
    "SHA-512",
    "AES",
    "DES3",
    "SCEPStandard",
    "Renewal",
)
# The requests that ask for a certificate: what the issuance counter counts.
ENROLMENTS = frozenset({MessageType.PKCS_REQ, MessageType.RENEWAL_REQ})
SUPPORTED_DIGESTS: dict[str, cms.DigestName] = {
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
}


_CHALLENGE_REFUSALS = {
    ChallengeOutcome.UNKNOWN: "the challenge password is missing or wrong",
    ChallengeOutcome.ALREADY_USED: "the challenge password was already used",
    ChallengeOutcome.EXPIRED: "the challenge password has expired",
}


@dataclass(frozen=True)
class ScepReply:
    """A CertRep and what it says, for the log line."""

    body: bytes
    transaction_id: str
    message_type: int
    status: PkiStatus
    fail_info: FailInfo | None = None
    reason: str | None = None
    certificate_serial: int | None = None
    cipher: str | None = None  # the request's envelope cipher, once decrypted


class _RefusalError(Exception):
    def __init__(self, fail_info: FailInfo, reason: str) -> None:
        super().__init__(reason)
        self.fail_info = fail_info
        self.reason = reason


@dataclass(frozen=True)
class _Verified:
    request: ScepRequest
    signer: x509.Certificate
    content: bytes
    cipher: cms.ContentCipher
    digest: cms.DigestName


class ScepService:
    def __init__(
        self,
        ca: CertificateAuthority,
        certificates: CertificateStore,
        transactions: ScepTransactionStore,
        challenges: ChallengeVerifier,
        *,
        validity_days: int,
        max_clock_skew: timedelta,
        clock: Callable[[], datetime],
        responder: CertificateAuthority | None = None,
        manual_approval: bool = False,
    ) -> None:
        self._ca = ca
        # RFC 8894 §2.2: requests are encrypted to, and CertReps signed by, an RA when the
        # CA delegates to one; otherwise the CA plays both parts.
        self._responder = responder or ca
        self._certificates = certificates
        self._transactions = transactions
        self._challenges = challenges
        self._issuer = Issuer(ca, transactions, validity_days=validity_days, clock=clock)
        self._manual_approval = manual_approval
        self._max_skew = max_clock_skew
        self._clock = clock

    def capabilities(self) -> str:
        return "\n".join(CAPABILITIES) + "\n"

    def ca_certificates(self) -> tuple[bytes, str]:
        """GetCACert: the CA alone as DER, or CA and RA as a certs-only SignedData."""
        if self._responder is self._ca:
            return self._ca.certificate.public_bytes(Encoding.DER), "application/x-x509-ca-cert"
        chain = cms.certificates_only([self._responder.certificate, self._ca.certificate])
        return chain, "application/x-x509-ca-ra-cert"

    async def pki_operation(self, der: bytes) -> ScepReply:
        request = read_request(der)
        digest = SUPPORTED_DIGESTS.get(request.digest, "sha256")
        try:
            if request.digest not in SUPPORTED_DIGESTS:
                raise _RefusalError(FailInfo.BAD_ALG, f"digest {request.digest} is not supported")
            verified = self._verify(request, digest)
            return await self._dispatch(verified)
        except _RefusalError as refusal:
            if request.message_type in ENROLMENTS:
                SCEP_ISSUANCES.labels("refused").inc()
            body = build_cert_rep(
                self._responder,
                request,
                status=PkiStatus.FAILURE,
                digest=digest,
                fail_info=refusal.fail_info,
                fail_text=refusal.reason,
            )
            return ScepReply(
                body,
                request.transaction_id,
                request.message_type,
                PkiStatus.FAILURE,
                refusal.fail_info,
                refusal.reason,
            )

    def _verify(self, request: ScepRequest, digest: cms.DigestName) -> _Verified:
        now = self._clock()
        # A renewal is signed by the certificate being renewed, so it must chain to us and
        # be valid now (RFC 8894 §3.3.1.2); a first request is signed by a throw-away
        # self-signed certificate, which proves only possession of its key.
        trusted = (
            [self._ca.certificate] if request.message_type == MessageType.RENEWAL_REQ else None
        )
        try:
            signed = cms.verify(request.der, trusted=trusted, at=now)
        except cms.CmsError as exc:
            raise _RefusalError(
                FailInfo.BAD_MESSAGE_CHECK, f"signature check failed: {exc}"
            ) from exc
        if signed.signing_time is not None and abs(now - signed.signing_time) > self._max_skew:
            raise _RefusalError(FailInfo.BAD_TIME, "signingTime is too far from the CA's clock")
        try:
            envelope = cms.decrypt(signed.content, self._responder.certificate, self._responder.key)
        except cms.CmsError as exc:
            raise _RefusalError(FailInfo.BAD_MESSAGE_CHECK, f"cannot decrypt: {exc}") from exc
        return _Verified(request, signed.signer, envelope.content, envelope.cipher, digest)

    async def _dispatch(self, verified: _Verified) -> ScepReply:
        kind = verified.request.message_type
        if kind == MessageType.PKCS_REQ:
            return await self._enrol(verified, renewal=False)
        if kind == MessageType.RENEWAL_REQ:
            return await self._enrol(verified, renewal=True)
        if kind == MessageType.CERT_POLL:
            return await self._poll(verified)
        if kind == MessageType.GET_CERT:
            try:
                serial = serial_from_issuer_and_serial(verified.content)
            except ScepMessageError as exc:
                raise _RefusalError(FailInfo.BAD_REQUEST, str(exc)) from exc
            return await self._reply_with(verified, serial, FailInfo.BAD_CERT_ID)
        raise _RefusalError(FailInfo.BAD_REQUEST, f"messageType {kind} is not supported")

    async def _enrol(self, verified: _Verified, *, renewal: bool) -> ScepReply:
        try:
            csr = read_csr(verified.content)
        except CsrError as exc:
            raise _RefusalError(FailInfo.BAD_REQUEST, f"unusable CSR: {exc}") from exc
        if not renewal and not self._manual_approval:
            return await self._enrol_at_once(verified, csr)
        replayed = await self._replayed(verified, renewal=renewal)
        if replayed is not None:
            return replayed
        if renewal:
            binding = await self._check_renewal(verified.signer, csr)
        else:
            binding = await self._check_challenge(verified.request, csr)
            if self._manual_approval:
                return await self._hold(verified, binding)
        return await self._issue(verified, csr, binding)

    async def _enrol_at_once(self, verified: _Verified, csr: CheckedCsr) -> ScepReply:
        """A PKCSReq answered with its certificate: one database transaction checks for a
        resend, consumes the challenge and records the certificate."""
        presented = csr.challenge or verified.request.challenge_attribute
        if not presented:
            raise _RefusalError(FailInfo.BAD_REQUEST, _CHALLENGE_REFUSALS[ChallengeOutcome.UNKNOWN])
        result = await self._issuer.enrol(
            verified.request.transaction_id,
            verified.content,
            csr,
            self._challenges.digest_to_consume(presented),
        )
        if isinstance(result, x509.Certificate):
            return self._success(verified, result)
        if isinstance(result, ScepTransaction):
            return await self._resent(verified, result)
        raise _RefusalError(FailInfo.BAD_REQUEST, _CHALLENGE_REFUSALS[result])

    async def _replayed(self, verified: _Verified, *, renewal: bool) -> ScepReply | None:
        """RFC 8894 §3.3.1: a resent request gets the same answer, not a second certificate
        (and must not fail because its one-time challenge was used the first time)."""
        previous = await self._transactions.get_transaction(verified.request.transaction_id)
        if previous is None:
            return None
        if renewal and (
            previous.csr_der != verified.content
            or previous.certificate_serial == verified.signer.serial_number
        ):
            # Clients that derive the transactionID from the key (micromdm's scepclient)
            # reuse it when they renew with the same key: signed by the certificate that
            # transaction produced, or for another CSR, this is a new renewal.
            return None
        return await self._resent(verified, previous)

    async def _resent(self, verified: _Verified, previous: ScepTransaction) -> ScepReply:
        if previous.csr_der != verified.content:
            raise _RefusalError(FailInfo.BAD_REQUEST, "transactionID already used for another CSR")
        return await self._answer(verified, previous)

    async def _check_challenge(self, request: ScepRequest, csr: CheckedCsr) -> Binding:
        used = await self._challenges.check(csr.challenge or request.challenge_attribute)
        if used.outcome != ChallengeOutcome.CONSUMED:
            raise _RefusalError(FailInfo.BAD_REQUEST, _CHALLENGE_REFUSALS[used.outcome])
        # An identity renewal's challenge (mdm/renewal.py) makes this a renewal too, held
        # or not: MDM keeps the enrollment's queue only for a certificate that says so.
        return Binding(device_id=used.device_id, renewal_of=used.renewal_of)

    async def _check_renewal(self, signer: x509.Certificate, csr: CheckedCsr) -> Binding:
        record = await self._certificates.get_certificate(signer.serial_number)
        if record is None or record.sha256 != fingerprint_sha256(signer):
            raise _RefusalError(
                FailInfo.BAD_MESSAGE_CHECK, "renewal signed by a certificate we did not issue"
            )
        if record.status != CertificateStatus.VALID:
            raise _RefusalError(
                FailInfo.BAD_MESSAGE_CHECK, "renewal signed by a revoked certificate"
            )
        if csr.subject != signer.subject:
            raise _RefusalError(
                FailInfo.BAD_REQUEST, "a renewal must keep the certificate's subject"
            )
        # The new certificate stands for the same device as the one it renews.
        return Binding(device_id=record.device_id, renewal_of=record.serial)

    async def _issue(self, verified: _Verified, csr: CheckedCsr, binding: Binding) -> ScepReply:
        try:
            cert = await self._issuer.issue(
                verified.request.transaction_id, verified.content, binding, checked=csr
            )
        except CsrError as exc:
            raise _RefusalError(FailInfo.BAD_REQUEST, str(exc)) from exc
        return self._success(verified, cert)

    async def _hold(self, verified: _Verified, binding: Binding) -> ScepReply:
        """Keep the request for an administrator (see `approvals`)."""
        held = ScepTransaction(
            transaction_id=verified.request.transaction_id,
            status=ScepTransactionStatus.PENDING,
            csr_der=verified.content,
            created_at=self._clock(),
            device_id=binding.device_id,
            renewal_of=binding.renewal_of,
        )
        await self._transactions.save_transaction(held)
        SCEP_ISSUANCES.labels("pending").inc()
        return await self._answer(verified, held)

    async def _poll(self, verified: _Verified) -> ScepReply:
        tx = await self._transactions.get_transaction(verified.request.transaction_id)
        if tx is None:
            raise _RefusalError(FailInfo.BAD_CERT_ID, "no request with this transactionID")
        return await self._answer(verified, tx)

    async def _answer(self, verified: _Verified, tx: ScepTransaction) -> ScepReply:
        """What a transaction's state says to a resent request or a poll."""
        if tx.status == ScepTransactionStatus.PENDING:
            body = build_cert_rep(
                self._responder, verified.request, status=PkiStatus.PENDING, digest=verified.digest
            )
            return ScepReply(
                body, tx.transaction_id, verified.request.message_type, PkiStatus.PENDING
            )
        if tx.certificate_serial is None:
            raise _RefusalError(FailInfo.BAD_REQUEST, "an administrator rejected this request")
        return await self._reply_with(verified, tx.certificate_serial, FailInfo.BAD_CERT_ID)

    async def _reply_with(self, verified: _Verified, serial: int, missing: FailInfo) -> ScepReply:
        record = await self._certificates.get_certificate(serial)
        if record is None:
            raise _RefusalError(missing, "no certificate with this serial number")
        return self._success(verified, x509.load_der_x509_certificate(record.der))

    def _success(self, verified: _Verified, cert: x509.Certificate) -> ScepReply:
        envelope = issued_envelope([cert], verified.signer, verified.cipher)
        body = build_cert_rep(
            self._responder,
            verified.request,
            status=PkiStatus.SUCCESS,
            digest=verified.digest,
            envelope=envelope,
        )
        return ScepReply(
            body,
            verified.request.transaction_id,
            verified.request.message_type,
            PkiStatus.SUCCESS,
            certificate_serial=cert.serial_number,
            cipher=verified.cipher,
        )
