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


@app.command("sweep")
def sweep_(
    stale_after: float | None = typer.Option(
        None,
        help="Seconds without a heartbeat after which a running run counts as dead "
        "(default: PREFECT_INTEGRATIONS_WFLO_RECOVERY_STALE_AFTER_SECONDS, 120).",
    ),
    every: float | None = typer.Option(
        None, help="Keep sweeping, this many seconds apart, until interrupted."
    ),
) -> None:
    """Recover every run with outstanding compensations: crashed, failed or silent ones.

    Completed runs are released; failed, crashed or cancelled ones are compensated;
    running ones whose heartbeat stopped are marked Crashed, then compensated.
    For deployments without the recovery automations (`wflo compensate automations`).
    """
    import time
    from datetime import timedelta

    from wflo_prefect.compensation.recovery import sweep

    stale = timedelta(seconds=stale_after) if stale_after is not None else None
    while True:
        outcomes = sweep(stale_after=stale)
        table = Table(title="Sweep", title_justify="left")
        for column in ("flow run", "Prefect state", "verdict", "done", "failed"):
            table.add_column(column)
        for o in outcomes:
            table.add_row(
                o.flow_run_id,
                o.state,
                o.verdict,
                str(len(o.report.done)) if o.report else "",
                ", ".join(o.report.failed) if o.report else "",
            )
        if outcomes:
            console.print(table)
        else:
            console.print("No flow run has outstanding compensations.")
        if every is None:
            if any(o.report is not None and o.report.failed for o in outcomes):
                raise typer.Exit(1)
            return
        time.sleep(every)


@app.command("automations")
def automations(
    deployment: str = typer.Argument(
        ...,
        help="The recovery deployment, FLOW/NAME (flows/recovery.py deployed as "
        "wflo-recover-run/wflo-recover-run in prefect.yaml).",
    ),
    zombie_after: float = typer.Option(
        90.0, min=10, help="Seconds without a heartbeat before a run is set Crashed."
    ),
    show: bool = typer.Option(
        False, "--print", help="Print the automations as JSON instead of creating them."
    ),
) -> None:
    """Create the Prefect automations that recover crashed and silent runs by themselves."""
    import json

    from wflo_prefect.compensation.automations import (
        install_recovery_automations,
        recovery_automations,
    )

    if show:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            target = client.read_deployment_by_name(deployment)
        specs = [
            a.model_dump(mode="json")
            for a in recovery_automations(target.id, zombie_after=zombie_after)
        ]
        console.print_json(json.dumps(specs))
        return
    created = install_recovery_automations(deployment, zombie_after=zombie_after)
    for name, automation_id in created.items():
        console.print(f"automation {name!r}: {automation_id}")


@app.command("prune-snapshots")
def prune_snapshots_(
    keep: int | None = typer.Option(None, min=1, help="Keep the newest N snapshots of each name."),
    older_than: float | None = typer.Option(
        None, min=0, help="Delete snapshots older than this many seconds."
    ),
    name: str | None = typer.Option(None, help="Only snapshots with this name."),
) -> None:
    """Apply a snapshot retention policy now (count and age); result-storage copies go too."""
    from datetime import timedelta

    from wflo_prefect.compensation.snapshots import prune_snapshots

    if keep is None and older_than is None:
        exit_with_error("say what to prune: --keep N and/or --older-than SECONDS")
    deleted = prune_snapshots(
        keep=keep,
        older_than=timedelta(seconds=older_than) if older_than is not None else None,
        name=name,
    )
    console.print(f"Deleted {deleted} snapshot(s).")
