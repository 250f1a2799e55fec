"""Policy decisions in the ledger: every evaluation, matched or not."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from wflo_prefect.ledger.models import PolicyDecisionRow

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["PolicyDecision", "PolicyRepository"]


class PolicyDecision(BaseModel):
    """One evaluation of one policy."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    occurred_at: datetime
    policy_name: str
    position: int
    condition: str
    matched: bool
    actions: list[Any]
    flow_run_id: str | None
    task_run_id: str | None
    context: dict[str, Any]


class PolicyRepository:
    """Reads and writes ``wflo_policy_decisions``."""

    def __init__(self, ledger: Database) -> None:
        self._ledger = ledger

    def record_many(self, decisions: list[dict[str, Any]]) -> None:
        """Store several evaluations in one transaction."""
        if not decisions:
            return
        with self._ledger.transaction() as session:
            session.add_all(PolicyDecisionRow(**d) for d in decisions)

    def for_flow_run(self, flow_run_id: str) -> list[PolicyDecision]:
        """A flow run's policy decisions, oldest first."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(PolicyDecisionRow)
                .where(PolicyDecisionRow.flow_run_id == flow_run_id)
                .order_by(PolicyDecisionRow.occurred_at, PolicyDecisionRow.position)
            ).all()
            return [PolicyDecision.model_validate(r) for r in rows]
