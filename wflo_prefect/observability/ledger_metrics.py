"""Gauges read from the governance ledger when Prometheus scrapes.

Budgets, pending approvals and compensations are state shared by every process
(and every host) through the ledger, not events of one process, so they are read
from it at scrape time rather than counted in memory. Every host's exporter
reports the same values; alert on ``max`` of them.

======================================  ===========================================
``wflo_budget_spent_usd{budget}``       spend in the current window of each budget key
``wflo_budget_limit_usd{budget}``       its limit
``wflo_budget_utilization_ratio``       spent / limit (``0.9``: 90 % used)
``wflo_approval_pending{overdue}``      pending requests, ``overdue="true"`` past deadline
``wflo_compensations{status}``          compensation log rows by status (``failed`` ...)
``wflo_ledger_up``                      1 when the ledger answered this scrape
======================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

__all__ = ["LEDGER_METRIC_NAMES", "LedgerCollector"]

LEDGER_METRIC_NAMES = (
    "wflo_budget_spent_usd",
    "wflo_budget_limit_usd",
    "wflo_budget_utilization_ratio",
    "wflo_approval_pending",
    "wflo_compensations",
    "wflo_ledger_up",
)


class LedgerCollector:
    """A prometheus-client collector over the ledger of the current settings."""

    def describe(self) -> list[Metric]:
        """No description up front, so registering never touches the ledger."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read the ledger once; ``wflo_ledger_up`` 0 (and nothing else) when it fails."""
        from wflo_prefect.ledger import get_ledger
        from wflo_prefect.ledger.models import ApprovalRequestRow, BudgetWindowRow, CompensationRow

        now = datetime.now(UTC)
        up = GaugeMetricFamily("wflo_ledger_up", "1 when the ledger answered this scrape.")
        try:
            with get_ledger().begin() as conn:
                windows = conn.execute(
                    sa.select(
                        BudgetWindowRow.budget_key,
                        BudgetWindowRow.spent_usd,
                        BudgetWindowRow.limit_usd,
                    ).where(
                        BudgetWindowRow.window_start <= now,
                        sa.or_(
                            BudgetWindowRow.window_end.is_(None),
                            BudgetWindowRow.window_end > now,
                        ),
                    )
                ).all()
                pending = conn.execute(
                    sa.select(ApprovalRequestRow.deadline_at).where(
                        ApprovalRequestRow.status == "pending"
                    )
                ).all()
                compensations = conn.execute(
                    sa.select(CompensationRow.status, sa.func.count()).group_by(
                        CompensationRow.status
                    )
                ).all()
        except Exception:  # a scrape must answer even when the ledger does not
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        spent = GaugeMetricFamily(
            "wflo_budget_spent_usd", "USD spent in the current window.", labels=["budget"]
        )
        limit = GaugeMetricFamily(
            "wflo_budget_limit_usd", "Limit of the current window.", labels=["budget"]
        )
        ratio = GaugeMetricFamily(
            "wflo_budget_utilization_ratio",
            "Spent / limit in the current window (1 = exhausted).",
            labels=["budget"],
        )
        for key, spent_usd, limit_usd in windows:
            spent.add_metric([key], float(spent_usd))
            limit.add_metric([key], float(limit_usd))
            if limit_usd > 0:
                ratio.add_metric([key], float(spent_usd / limit_usd))
        yield from (spent, limit, ratio)

        overdue = sum(1 for (deadline,) in pending if deadline is not None and deadline < now)
        approvals = GaugeMetricFamily(
            "wflo_approval_pending",
            "Approval requests waiting for a decision; overdue: past their deadline.",
            labels=["overdue"],
        )
        approvals.add_metric(["true"], overdue)
        approvals.add_metric(["false"], len(pending) - overdue)
        yield approvals

        by_status = GaugeMetricFamily(
            "wflo_compensations",
            "Compensating actions in the ledger, by status (pending, running, done, failed, "
            "released).",
            labels=["status"],
        )
        counts = dict(compensations)
        for status in ("pending", "running", "done", "failed", "released"):
            by_status.add_metric([status], counts.pop(status, 0))
        for status, count in counts.items():
            by_status.add_metric([str(status)], count)
        yield by_status
