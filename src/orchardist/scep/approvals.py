"""Manual approval of SCEP requests (`scep_manual_approval = true`): a request with a valid
challenge waits as PENDING until an administrator approves or rejects it; the client
learns the outcome by polling (CertPoll / GetCertInitial, RFC 8894 §3.3.3)."""

from __future__ import annotations

import dataclasses

from cryptography import x509

from orchardist.pki.csr import read_csr
from orchardist.scep.issuance import Binding, Issuer
from orchardist.storage import ScepTransaction, ScepTransactionStatus, ScepTransactionStore


class NotPendingError(LookupError):
    """No pending request has this transactionID; str(err) says what there is instead."""


class ScepApprovals:
    def __init__(self, transactions: ScepTransactionStore, issuer: Issuer) -> None:
        self._transactions = transactions
        self._issuer = issuer

    async def pending(self) -> list[ScepTransaction]:
        return await self._transactions.pending_transactions()

    async def approve(self, transaction_id: str) -> x509.Certificate:
        """Issue the certificate, bound as the request's challenge said (its device, and
        the serial an identity renewal renews); the client receives it at its next poll.
        CsrError when the CA refuses the CSR after all (the request is then rejected)."""
        tx = await self._pending(transaction_id)
        try:
            binding = Binding(device_id=tx.device_id, renewal_of=tx.renewal_of)
            return await self._issuer.issue(tx.transaction_id, tx.csr_der, binding)
        except ValueError:
            await self.reject(transaction_id)
            raise

    async def reject(self, transaction_id: str) -> None:
        tx = await self._pending(transaction_id)
        rejected = dataclasses.replace(tx, status=ScepTransactionStatus.REJECTED)
        await self._transactions.save_transaction(rejected)

    async def _pending(self, transaction_id: str) -> ScepTransaction:
        tx = await self._transactions.get_transaction(transaction_id)
        if tx is None:
            raise NotPendingError(f"no SCEP request with transactionID {transaction_id!r}")
        if tx.status != ScepTransactionStatus.PENDING:
            raise NotPendingError(f"request {transaction_id!r} is {tx.status.value}, not pending")
        return tx


def describe(tx: ScepTransaction) -> dict[str, str]:
    """A held request as `orchardist scep pending` and the console list it: its
    transactionID (copied whole into approve), the subject its CSR asks for, and when it
    arrived."""
    try:
        subject = read_csr(tx.csr_der).subject.rfc4514_string()
    except ValueError:
        subject = "(unreadable CSR)"
    return {
        "transaction_id": tx.transaction_id,
        "subject": subject,
        "received": tx.created_at.isoformat(timespec="seconds"),
    }
