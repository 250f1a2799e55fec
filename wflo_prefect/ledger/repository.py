"""The repository layer: the only code that reads or writes the ledger's tables.

:class:`Ledger` is a :class:`~wflo_prefect.ledger.database.Database` (an engine and
short transactions) with each capability's repository on it (``ledger.audit``,
``ledger.costs``, ``ledger.approvals``...). Each repository owns its SQL and writes
through the shared ``transaction()`` / ``begin()``; none imports this module, so the
ledger's modules import in one direction only. :func:`get_ledger` returns the
process-wide ledger for the configured URL, migrated on first use.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from wflo_prefect.ledger.approvals import ApprovalRepository
from wflo_prefect.ledger.audit import AuditRepository
from wflo_prefect.ledger.compensations import CompensationRepository
from wflo_prefect.ledger.costs import CostRepository
from wflo_prefect.ledger.database import Database
from wflo_prefect.ledger.policies import PolicyRepository
from wflo_prefect.ledger.spans import SpanRepository
from wflo_prefect.settings import get_settings

__all__ = ["AuditRepository", "Ledger", "get_ledger", "reset_ledger_cache"]


class Ledger(Database):
    """Access to one ledger database, with every capability's repository on it."""

    def __init__(self, engine: Engine, *, auto_migrate: bool = True) -> None:
        super().__init__(engine, auto_migrate=auto_migrate)
        self.audit = AuditRepository(self)
        self.costs = CostRepository(self)
        self.approvals = ApprovalRepository(self)
        self.policies = PolicyRepository(self)
        self.compensations = CompensationRepository(self)
        self.spans = SpanRepository(self)

    def _close_repositories(self) -> None:
        self.audit.close()


_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


_default: Ledger | None = None


def get_ledger(url: str | None = None) -> Ledger:
    """The process-wide ledger for ``url`` (default: the configured one).

    The configured default is resolved once per process (this is on the path of
    every governed run); :func:`reset_ledger_cache` forgets it.
    """
    global _default
    if url is None and _default is not None:
        return _default
    settings = get_settings()
    resolved = url or settings.ledger_url_value()
    ledger = _ledgers.get(resolved)
    if ledger is None:
        with _ledgers_lock:
            ledger = _ledgers.get(resolved)
            if ledger is None:
                ledger = Ledger.from_url(
                    resolved,
                    auto_migrate=settings.ledger_auto_migrate,
                    pool_size=settings.ledger_pool_size,
                )
                _ledgers[resolved] = ledger
    if url is None:
        _default = ledger
    return ledger


def reset_ledger_cache() -> None:
    """Forget cached ledgers and close their connections (tests, forks)."""
    global _default
    with _ledgers_lock:
        _default = None
        for ledger in _ledgers.values():
            ledger.dispose()
        _ledgers.clear()
