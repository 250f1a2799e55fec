"""``wflo debug RUN_ID``: one run's story on one screen.

Its Prefect state and task runs, every LLM call (model, tokens, cost, what its budgets
had left after it), every policy evaluation (matched or not) and the audit trail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wflo_prefect.cli._console import console

if TYPE_CHECKING:
    from wflo_prefect.cli._runs import RunView
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


def _task_names(view: RunView) -> dict[str, str]:
    return {str(tr.id): tr.name for tr in view.task_runs}


def render_llm_calls(view: RunView) -> Table:
    """Each LLM call of the run: model, tokens, cost, and each budget's money left after it."""
    from wflo_prefect.observability.budget_view import remaining_after

    tasks = _task_names(view)
    table = Table(title=f"LLM calls ({len(view.cost_entries)})", title_justify="left")
    for column in ("time (UTC)", "task", "model", "tokens in/out (cached)", "cost USD"):
        table.add_column(column)
    table.add_column("budget left after")
    total = Decimal(0)
    for entry in view.cost_entries:
        total += entry.cost_usd
        model = f"{entry.provider}/{entry.model}"
        if entry.requested_model:
            model += f" (asked {entry.requested_model})"
        if entry.cached:
            model += " [cache hit]"
        left = "; ".join(
            f"{name}: {rest.normalize():f} of {limit.normalize():f}"
            for name, limit, rest in remaining_after(view.budgets, entry)
        )
        table.add_row(
            entry.occurred_at.strftime("%H:%M:%S.%f")[:-3],
            tasks.get(entry.task_run_id or "", entry.task_run_id or ""),
            model,
            f"{entry.input_tokens}/{entry.output_tokens} ({entry.cached_input_tokens})",
            f"{entry.cost_usd.normalize():f}",
            left or "-",
        )
    table.caption = f"total {total.normalize():f} USD" if view.cost_entries else None
    return table


def render_policy_decisions(view: RunView) -> Table:
    """Every policy evaluation of the run, matched or not, with its point and target."""
    tasks = _task_names(view)
    table = Table(title=f"Policy evaluations ({len(view.decisions)})", title_justify="left")
    for column in ("time (UTC)", "task", "point", "target", "policy", "matched", "actions"):
        table.add_column(column)
    for decision in view.decisions:
        context = decision.context
        table.add_row(
            decision.occurred_at.strftime("%H:%M:%S.%f")[:-3],
            tasks.get(decision.task_run_id or "", decision.task_run_id or ""),
            str(context.get("point", "")),
            f"{context.get('kind', '')} {context.get('name', '')}".strip(),
            f"{decision.policy_name} ({decision.condition})",
            "yes" if decision.matched else "no",
            ", ".join(str(a) for a in decision.actions),
        )
    return table


def debug(run_id: str = typer.Argument(..., help="The flow run id (a UUID).")) -> None:
    """Show a flow run's state, task runs, LLM calls, policy evaluations and audit trail."""
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
    if view.cost_entries:
        console.print(render_llm_calls(view))
    if view.decisions:
        console.print(render_policy_decisions(view))
    if not view.events:
        console.print("No wflo audit events for this run (was it governed?).")
        if view.prefect_error:
            raise typer.Exit(1)
        return
    console.print(render_audit(view.events, f"Audit trail ({len(view.events)} events)"))
    trace_ids = sorted({e.trace_id for e in view.events if e.trace_id})
    if trace_ids:
        console.print(f"trace id: {', '.join(trace_ids)}")
