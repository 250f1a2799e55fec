"""Cost entries and registered budgets: their records and SQL (``ledger.costs``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select

from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import BudgetRow, CostEntryRow, utcnow

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["BudgetRecord", "CostEntry", "EntryStore", "NewCostEntry"]


class _CostFields(BaseModel):
    """The attribution, usage and money of one LLM call (shared by new and stored entries)."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    deployment_id: str | None = None
    work_pool: str | None = None
    user: str | None = None
    tags: list[str] = []
    provider: str
    model: str
    requested_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    saved_usd: Decimal = Decimal(0)
    priced: bool = True
    cached: bool = False
    latency_ms: float | None = None
    request_id: str | None = None
    trace_id: str | None = None


class CostEntry(_CostFields):
    """One priced (or unpriced) LLM call as stored."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    occurred_at: datetime


class NewCostEntry(_CostFields):
    """What :meth:`CostRepository.settle` and :meth:`CostRepository.record` write."""

    occurred_at: datetime | None = None


class BudgetRecord(BaseModel):
    """A budget as registered in the ledger (for ``wflo budgets``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    name: str
    scope: str
    scope_value: str | None = None
    max_usd: Decimal
    period: str
    timezone: str
    alert_thresholds: list[Any]
    on_exceeded: str
    updated_at: datetime


class EntryStore:
    """Writes and reads cost entries and registered budgets."""

    _ledger: Database

    def record(self, entry: NewCostEntry) -> CostEntry:
        """Write one cost entry that held no budget."""
        values = entry_values(entry)
        with self._ledger.single_statement() as connection:
            connection.execute(INSERT_ENTRY, [values])
        return CostEntry.model_construct(**values)

    def entries(
        self,
        *,
        flow_run_id: str | None = None,
        since: datetime | None = None,
        flow_name: str | None = None,
        deployment_id: str | None = None,
    ) -> list[CostEntry]:
        """Cost entries matching every filter given, oldest first."""
        with self._ledger.transaction() as session:
            query = select(CostEntryRow)
            if flow_run_id is not None:
                query = query.where(CostEntryRow.flow_run_id == flow_run_id)
            if since is not None:
                query = query.where(CostEntryRow.occurred_at >= since)
            if flow_name is not None:
                query = query.where(CostEntryRow.flow_name == flow_name)
            if deployment_id is not None:
                query = query.where(CostEntryRow.deployment_id == deployment_id)
            rows = session.scalars(query.order_by(CostEntryRow.occurred_at, CostEntryRow.id))
            return [CostEntry.model_validate(r) for r in rows.all()]

    def upsert_budget(self, record: BudgetRecord) -> None:
        """Register (or update) a budget by name, for listing and status."""
        with self._ledger.transaction() as session:
            row = session.scalars(
                select(BudgetRow).where(BudgetRow.name == record.name)
            ).one_or_none()
            fields = record.model_dump()
            if row is None:
                session.add(BudgetRow(**fields, created_at=utcnow()))
            else:
                changed = any(getattr(row, k) != v for k, v in fields.items() if k != "updated_at")
                if changed:
                    for key, value in fields.items():
                        setattr(row, key, value)

    def budgets(self) -> list[BudgetRecord]:
        """Every registered budget, by name."""
        with self._ledger.transaction() as session:
            rows = session.scalars(select(BudgetRow).order_by(BudgetRow.name)).all()
            return [BudgetRecord.model_validate(r) for r in rows]


def entry_values(entry: NewCostEntry) -> dict[str, Any]:
    """The row values of a new cost entry (its id and time filled in)."""
    data = entry.model_dump()
    data["occurred_at"] = data["occurred_at"] or utcnow()
    data["id"] = new_id()
    return data


#: Statements on the path of every call, built once.
INSERT_ENTRY = insert(CostEntryRow)
