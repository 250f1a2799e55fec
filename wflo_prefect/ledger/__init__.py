"""Governance ledger: tables, migrations and the repository every capability writes through."""

from wflo_prefect.ledger.records import AuditEvent
from wflo_prefect.ledger.repository import AuditRepository, Ledger, get_ledger, reset_ledger_cache

__all__ = ["AuditEvent", "AuditRepository", "Ledger", "get_ledger", "reset_ledger_cache"]
