"""``wflo debug RUN_ID``: a run's Prefect state and its audit trail on one screen."""

from __future__ import annotations

import uuid
from typing import Any

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import InvalidArgumentError, WfloError
from wflo_prefect.ledger import AuditEvent, get_ledger


def _prefect_view(flow_run_id: uuid.UUID) -> tuple[Any, list[Any]] | str:
    """The flow run and its task runs from the Prefect API, or why they are not there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(flow_run_id)
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            return flow_run, list(task_runs)
    except ObjectNotFound:
        return "the Prefect API has no flow run with this id"
    except Exception as exc:  # the API may be unreachable; the audit trail still helps.
        return f"the Prefect API could not be read ({type(exc).__name__}: {exc})"


def render_audit(events: list[AuditEvent], title: str) -> Table:
    """A table of audit events, oldest first."""
    table = Table(title=title, title_justify="left")
    for column in ("time (UTC)", "event", "task", "outcome", "details"):
        table.add_column(column)
    for event in events:
        details = ", ".join(f"{k}={v}" for k, v in event.payload.items())
        table.add_row(
            event.occurred_at.strftime("%H:%M:%S.%f")[:-3],
            event.event,
            event.task_name or "",
            event.outcome or "",
            details,
        )
    return table


def debug(run_id: str = typer.Argument(..., help="The flow run id (a UUID).")) -> None:
    """Show a flow run's Prefect state, its task runs and its wflo audit trail."""
    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        exit_with_error(
            InvalidArgumentError(
                "RUN_ID must be a flow run id (a UUID)",
                value=run_id,
                hint="Copy it from the Prefect UI or `prefect flow-run ls`",
            )
        )
    try:
        events = get_ledger().audit.for_flow_run(str(flow_run_id))
    except WfloError as exc:
        exit_with_error(exc)
    view = _prefect_view(flow_run_id)
    if isinstance(view, str):
        console.print(f"[yellow]Prefect:[/yellow] {view}.")
    else:
        flow_run, task_runs = view
        state = flow_run.state
        console.print(
            f"[bold]Flow run[/bold] {flow_run.name} ({flow_run.id})  "
            f"state: [bold]{state.name if state else 'unknown'}[/bold]"
            + (f"  message: {state.message}" if state and state.message else "")
        )
        if task_runs:
            tasks = Table(title="Task runs (Prefect)", title_justify="left")
            for column in ("task run", "state", "start", "end"):
                tasks.add_column(column)
            for tr in sorted(task_runs, key=lambda t: t.expected_start_time or t.created):
                tasks.add_row(
                    tr.name,
                    tr.state.name if tr.state else "",
                    str(tr.start_time or ""),
                    str(tr.end_time or ""),
                )
            console.print(tasks)
    if not events:
        console.print("No wflo audit events for this run (was it governed?).")
        if isinstance(view, str):
            raise typer.Exit(1)
        return
    trace_ids = sorted({e.trace_id for e in events if e.trace_id})
    console.print(render_audit(events, f"Audit trail ({len(events)} events)"))
    if trace_ids:
        console.print(f"trace id: {', '.join(trace_ids)}")
