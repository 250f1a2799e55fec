"""The cost ledger (``ledger.costs``): cost entries, budgets, windows, holds and leases.

One store over the shared ledger database, in concerns: entries and registered
budgets (:mod:`~wflo_prefect.ledger.cost_entries`), windows and call holds
(:mod:`~wflo_prefect.ledger.budget_store`), leases
(:mod:`~wflo_prefect.ledger.lease_store`); whether a hold fits is the pure
:mod:`~wflo_prefect.ledger.budget_model`. This module joins them and settles a
call, which touches all three in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from wflo_prefect.ledger.budget_model import (
    HoldRequest,
    LeaseCharge,
    LeaseSync,
    Refusal,
    WindowState,
)
from wflo_prefect.ledger.cost_entries import (
    INSERT_ENTRY,
    BudgetRecord,
    CostEntry,
    EntryStore,
    NewCostEntry,
    entry_values,
)
from wflo_prefect.ledger.lease_store import CHARGE_WINDOW, INSERT_LEASED_ENTRY, LeaseStore

__all__ = [
    "BudgetRecord",
    "CostEntry",
    "CostRepository",
    "HoldRequest",
    "LeaseCharge",
    "LeaseSync",
    "NewCostEntry",
    "Refusal",
    "WindowState",
]


class CostRepository(LeaseStore, EntryStore):
    """Cost entries, budgets, windows, call holds and leases (``ledger.costs``)."""

    def settle(
        self,
        reservation_ids: Sequence[str],
        entry: NewCostEntry,
        leased: Sequence[LeaseCharge] = (),
    ) -> tuple[CostEntry | None, list[WindowState]]:
        """Charge the entry's cost to its holds and write the entry, once.

        ``reservation_ids`` are call holds: their windows are charged now.
        ``leased`` charges leases: each adds the cost to its lease's pending cost (a
        lease expired meanwhile charges its window directly). Returns the stored
        entry (``None`` when the call holds were already closed) and the states of
        the call holds' windows after the charge.
        """
        values = entry_values(entry)
        via_entry = next((c for c in leased if c.via_entry), None)
        if not reservation_ids and len(leased) == 1 and via_entry and not via_entry.grow_usd:
            # The common case, one budget on a lease: a single statement, no transaction.
            with self._ledger.single_statement() as connection:
                inserted = connection.execute(
                    INSERT_LEASED_ENTRY, {**values, "lease_id": via_entry.lease_id}
                ).first()
            if inserted is not None:
                return CostEntry.model_construct(**values), []
            # The lease was expired by another process: its hold is gone, charge directly.
            with self._ledger.begin() as connection:
                connection.execute(INSERT_ENTRY, [values])
                connection.execute(
                    CHARGE_WINDOW, {"b_id": via_entry.window_id, "b_cost": via_entry.cost_usd}
                )
            return CostEntry.model_construct(**values), []
        with self._ledger.begin() as connection:
            pending = self._close(
                connection, reservation_ids, "settled", entry.cost_usd, entry.cost_usd, values["id"]
            )
            if reservation_ids and not pending:
                return None, []
            if via_entry is None:
                connection.execute(INSERT_ENTRY, [values])
            else:
                self._insert_leased(connection, values, via_entry)
            for charge in sorted(leased, key=lambda c: c.lease_id):
                if charge is not via_entry:
                    self._charge_lease(connection, charge)
            states = self._apply(connection, pending)
        return CostEntry.model_construct(**values), states
