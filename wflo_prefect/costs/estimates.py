"""Estimates before running: a flow's or deployment's cost from its past runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger

__all__ = ["RunCostEstimate", "estimate_run_cost", "percentile"]


@dataclass(frozen=True, slots=True)
class RunCostEstimate:
    """Cost per run of a flow or deployment, from its past runs' ledger entries."""

    runs: int
    p50_usd: Decimal
    p95_usd: Decimal
    max_usd: Decimal


def percentile(values: list[Decimal], fraction: Decimal) -> Decimal:
    """The nearest-rank percentile of ``values`` (sorted or not)."""
    ordered = sorted(values)
    rank = int((fraction * len(ordered)).to_integral_value(rounding=ROUND_CEILING))
    return ordered[max(rank, 1) - 1]


def estimate_run_cost(
    *,
    flow_name: str | None = None,
    deployment_id: str | None = None,
    since: datetime | None = None,
) -> RunCostEstimate:
    """Median and 95th percentile cost of one run of a flow (or a deployment)."""
    if (flow_name is None) == (deployment_id is None):
        raise InvalidArgumentError(
            "Estimate either a flow or a deployment",
            value={"flow_name": flow_name, "deployment_id": deployment_id},
            hint="Pass exactly one of flow_name= or deployment_id=",
        )
    entries = get_ledger().costs.entries(
        flow_name=flow_name, deployment_id=deployment_id, since=since
    )
    per_run: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.flow_run_id:
            per_run[entry.flow_run_id] += entry.cost_usd
    totals = list(per_run.values())
    if not totals:
        return RunCostEstimate(0, Decimal(0), Decimal(0), Decimal(0))
    return RunCostEstimate(
        runs=len(totals),
        p50_usd=percentile(totals, Decimal("0.5")),
        p95_usd=percentile(totals, Decimal("0.95")),
        max_usd=max(totals),
    )
