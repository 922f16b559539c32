"""The audit log: who did what, to which targets, when, and how it went — for every
state-changing action from the console, the API and the CLI (see docs/audit.md)."""

from orchardist.audit.log import Actor, AuditLog, entry_fields
from orchardist.storage.audit import AuditEntry, AuditQuery, Outcome, Via

__all__ = ["Actor", "AuditEntry", "AuditLog", "AuditQuery", "Outcome", "Via", "entry_fields"]
