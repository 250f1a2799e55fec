"""Data clean-up whose approval is routed by risk, and undone if a later step fails.

Deployed by prefect.yaml to the ``wflo-process`` pool. The run finds stale
records, rates the deletion's risk (the share of the table it removes) and asks
the matching approvers through ``require_approval``:

- low risk (at most ``high_risk_share`` of the rows): one member of ``data-owners``;
- high risk: two distinct members of ``dba`` (quorum 2).

The delete archives the rows first and registers their restore as its
compensation (flows/data_cleanup.py), so when telling the owner fails afterwards
the run ends Failed and the rows are back. A delete on a ``prod_*`` table is
halted by policy before any approval is asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from flows.data_cleanup import count_rows, delete, find_stale, notify_owner, seed_database
from wflo_prefect import governed_flow, require_approval

Risk = Literal["low", "high"]
#: Who approves a delete of each risk, and how many of them must agree.
ROUTES: dict[Risk, tuple[str, int]] = {"low": ("data-owners", 1), "high": ("dba", 2)}


def rate_risk(stale: int, total: int, high_risk_share: float) -> Risk:
    """``high`` when the delete removes more than ``high_risk_share`` of the table."""
    return "high" if total == 0 or stale / total > high_risk_share else "low"


@governed_flow(name="reviewed-cleanup", log_prints=True)
def reviewed_cleanup(
    db_path: str = ".wflo-out/cleanup/customers.db",
    archive_dir: str = ".wflo-out/cleanup/archive",
    table: str = "customers",
    max_age_days: int = 365,
    owner_webhook: str | None = None,
    high_risk_share: float = 0.5,
    principals: str = "wflo-approvers",
    seed_rows: int = 0,
) -> dict[str, object]:
    """Delete stale records once the approvers their risk calls for agreed."""
    if seed_rows:
        seed_database(Path(db_path), table=table, rows=seed_rows)
    stale = find_stale(db_path, table, max_age_days)
    if not stale:
        return {"deleted": 0, "archive": None, "risk": None}
    total = count_rows(db_path, table)
    risk = rate_risk(len(stale), total, high_risk_share)
    group, quorum = ROUTES[risk]
    decision = require_approval(
        f"delete {len(stale)} stale rows from {table}",
        details={"table": table, "ids": stale, "rows_in_table": total, "risk": risk},
        approvers=[group],
        quorum=quorum,
        principals=principals,
        timeout=3600,
    )
    result = delete(db_path, table, stale, archive_dir)
    print(f"{risk}-risk delete of {result['deleted']} rows approved by {decision.approvers}")
    if owner_webhook:
        notify_owner(owner_webhook, result)  # fails -> the run fails -> the rows come back
    return {**result, "risk": risk, "approved_by": decision.approvers}
