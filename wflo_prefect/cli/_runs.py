"""Reading one flow run from the Prefect API and the ledger, for the run commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wflo_prefect.cli._console import exit_with_error
from wflo_prefect.errors import InvalidArgumentError, WfloError

if TYPE_CHECKING:
    from wflo_prefect.ledger import AuditEvent
    from wflo_prefect.ledger.costs import BudgetRecord, CostEntry
    from wflo_prefect.ledger.policies import PolicyDecision

__all__ = ["RunView", "load_run", "parse_run_id"]


@dataclass
class RunView:
    """What Prefect and the ledger know about one flow run."""

    flow_run_id: uuid.UUID
    events: list[AuditEvent]
    flow_run: Any = None
    task_runs: list[Any] = field(default_factory=list)
    prefect_error: str | None = None
    cost_entries: list[CostEntry] = field(default_factory=list)
    decisions: list[PolicyDecision] = field(default_factory=list)
    budgets: list[BudgetRecord] = field(default_factory=list)


def parse_run_id(run_id: str) -> uuid.UUID:
    """The UUID in ``run_id``, or exit with an error that quotes it."""
    try:
        return uuid.UUID(run_id)
    except ValueError:
        exit_with_error(
            InvalidArgumentError(
                "RUN_ID must be a flow run id (a UUID)",
                value=run_id,
                hint="Copy it from the Prefect UI or `prefect flow-run ls`",
            )
        )


def load_run(flow_run_id: uuid.UUID) -> RunView:
    """The run's audit trail, plus its Prefect flow run and task runs when readable."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.exceptions import ObjectNotFound

    from wflo_prefect.ledger import get_ledger

    try:
        ledger = get_ledger()
        view = RunView(
            flow_run_id=flow_run_id,
            events=ledger.audit.for_flow_run(str(flow_run_id)),
            cost_entries=ledger.costs.entries(flow_run_id=str(flow_run_id)),
            decisions=ledger.policies.for_flow_run(str(flow_run_id)),
            budgets=ledger.costs.budgets(),
        )
    except WfloError as exc:
        exit_with_error(exc)
    try:
        with get_client(sync_client=True) as client:
            view.flow_run = client.read_flow_run(flow_run_id)
            view.task_runs = list(
                client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
            )
    except ObjectNotFound:
        view.prefect_error = "the Prefect API has no flow run with this id"
    except Exception as exc:  # the API may be unreachable; the audit trail still helps.
        view.prefect_error = f"the Prefect API could not be read ({type(exc).__name__}: {exc})"
    return view
