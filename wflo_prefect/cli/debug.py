"""``wflo debug RUN_ID``: a run's Prefect state and its audit trail on one screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wflo_prefect.cli._console import console

if TYPE_CHECKING:
    from wflo_prefect.ledger import AuditEvent


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
    from wflo_prefect.cli._runs import load_run, parse_run_id

    view = load_run(parse_run_id(run_id))
    if view.prefect_error:
        console.print(f"[yellow]Prefect:[/yellow] {view.prefect_error}.")
    else:
        flow_run, state = view.flow_run, view.flow_run.state
        console.print(
            f"[bold]Flow run[/bold] {flow_run.name} ({flow_run.id})  "
            f"state: [bold]{state.name if state else 'unknown'}[/bold]"
            + (f"  message: {state.message}" if state and state.message else "")
        )
        if view.task_runs:
            tasks = Table(title="Task runs (Prefect)", title_justify="left")
            for column in ("task run", "state", "start", "end"):
                tasks.add_column(column)
            for tr in sorted(view.task_runs, key=lambda t: t.expected_start_time or t.created):
                tasks.add_row(
                    tr.name,
                    tr.state.name if tr.state else "",
                    str(tr.start_time or ""),
                    str(tr.end_time or ""),
                )
            console.print(tasks)
    if not view.events:
        console.print("No wflo audit events for this run (was it governed?).")
        if view.prefect_error:
            raise typer.Exit(1)
        return
    console.print(render_audit(view.events, f"Audit trail ({len(view.events)} events)"))
    trace_ids = sorted({e.trace_id for e in view.events if e.trace_id})
    if trace_ids:
        console.print(f"trace id: {', '.join(trace_ids)}")
