"""``wflo compensate``: see and finish a run's undo log, even after its process died."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error

if TYPE_CHECKING:
    from wflo_prefect.ledger.compensations import CompensationRecord

app = typer.Typer(help="Durable compensations (rollback) of flow runs.", no_args_is_help=True)


def _table(records: list[CompensationRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("order", "name", "handler", "status", "attempts", "last error"):
        table.add_column(column)
    for order, record in enumerate(reversed(records), start=1):
        table.add_row(
            str(order),
            record.name,
            record.handler,
            record.status,
            f"{record.attempts}/{record.max_attempts}",
            record.last_error or "",
        )
    return table


def _prefect_state(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    from wflo_prefect.cli._runs import parse_run_id

    with get_client(sync_client=True) as client:
        return client.read_flow_run(parse_run_id(flow_run_id)).state


@app.command("list")
def list_(run_id: str = typer.Argument(..., help="The flow run id.")) -> None:
    """Show a run's compensations in the order they would run (newest first)."""
    from wflo_prefect.cli._runs import parse_run_id
    from wflo_prefect.ledger import get_ledger

    records = get_ledger().compensations.for_flow_run(str(parse_run_id(run_id)))
    if not records:
        console.print(f"Flow run {run_id} registered no compensations.")
        return
    console.print(_table(records, f"Compensations of {run_id}"))


@app.command("run")
def run(
    run_id: str = typer.Argument(..., help="The flow run id."),
    force: bool = typer.Option(
        False, help="Compensate a run Prefect still shows as running (its process is gone)."
    ),
) -> None:
    """Run a failed (or abandoned) run's outstanding compensations, newest first."""
    from prefect.states import Crashed

    from wflo_prefect.cli._runs import parse_run_id
    from wflo_prefect.compensation.runner import run_compensations
    from wflo_prefect.ledger import get_ledger

    flow_run_id = str(parse_run_id(run_id))
    ledger = get_ledger()
    try:
        state = _prefect_state(flow_run_id)
    except Exception as exc:  # the undo log is in the ledger; Prefect is only consulted.
        if not force:
            exit_with_error(f"cannot read the run from Prefect ({exc}); use --force to go on")
        state = None
    if state is not None and state.is_completed():
        released = ledger.compensations.release_run(flow_run_id)
        console.print(f"Run {run_id} completed: nothing to undo ({released} released).")
        return
    if state is not None and not state.is_final():
        if not force:
            exit_with_error(
                f"run {run_id} is {state.name} in Prefect and may still be working; if its "
                "process is gone, run again with --force (the run is then marked Crashed)"
            )
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                parse_run_id(flow_run_id),
                Crashed(message="The process was gone; wflo ran its compensations."),
                force=True,
            )
    report = run_compensations(flow_run_id)
    console.print(
        _table(ledger.compensations.for_flow_run(flow_run_id), f"Compensations of {run_id}")
    )
    console.print(
        f"done: {len(report.done)}, failed: {len(report.failed)}, "
        f"left to other runners: {len(report.skipped)}"
    )
    if report.failed:
        raise typer.Exit(1)


@app.command("pending")
def pending() -> None:
    """List flow runs with compensations not yet run or released."""
    from wflo_prefect.ledger import get_ledger

    runs = get_ledger().compensations.runs_with_pending()
    if not runs:
        console.print("No flow run has outstanding compensations.")
        return
    table = Table(title="Runs with outstanding compensations", title_justify="left")
    table.add_column("flow run")
    table.add_column("Prefect state")
    for flow_run_id in runs:
        try:
            state = _prefect_state(flow_run_id)
            shown = state.name if state is not None else "unknown"
        except Exception as exc:
            shown = f"unreadable ({type(exc).__name__})"
        table.add_row(flow_run_id, shown)
    console.print(table)
