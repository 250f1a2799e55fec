"""``wflo trace`` and ``wflo logs``: one run's timeline and its log lines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.tree import Tree

from wflo_prefect.cli._console import console, exit_with_error

if TYPE_CHECKING:
    from wflo_prefect.cli._runs import RunView


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def trace_ids(view: RunView) -> list[str]:
    """The traces the run's audit events were recorded in."""
    return sorted({e.trace_id for e in view.events if e.trace_id})


def timeline(view: RunView, spans: list[Any] | None = None) -> dict[str, Any]:
    """The run as JSON: Prefect's view (flow run, task runs), wflo's audit events and the
    spans stored in the ledger (if the ledger span sink was on)."""
    flow_run = view.flow_run
    return {
        "flow_run_id": str(view.flow_run_id),
        "trace_ids": trace_ids(view),
        "prefect": None
        if flow_run is None
        else {
            "name": flow_run.name,
            "state": flow_run.state.name if flow_run.state else None,
            "start_time": _when(flow_run.start_time),
            "end_time": _when(flow_run.end_time),
            "deployment_id": str(flow_run.deployment_id) if flow_run.deployment_id else None,
            "task_runs": [
                {
                    "id": str(tr.id),
                    "name": tr.name,
                    "state": tr.state.name if tr.state else None,
                    "start_time": _when(tr.start_time),
                    "end_time": _when(tr.end_time),
                }
                for tr in sorted(view.task_runs, key=lambda t: t.expected_start_time or t.created)
            ],
        },
        "audit": [e.model_dump(mode="json") for e in view.events],
        "spans": [s.model_dump(mode="json") for s in spans or []],
        "prefect_error": view.prefect_error,
    }


def trace(
    run_id: str = typer.Argument(..., help="The flow run id (a UUID)."),
    export: Path | None = typer.Option(None, help="Write the timeline as JSON to this file."),
) -> None:
    """Show a run's span tree (when its spans are in the ledger), else its timeline of
    tasks and audit events; or export it all as JSON."""
    from wflo_prefect.cli._runs import load_run, parse_run_id
    from wflo_prefect.ledger import get_ledger

    view = load_run(parse_run_id(run_id))
    spans_repo = get_ledger().spans
    traces = sorted(set(trace_ids(view)) | set(spans_repo.trace_ids_of_run(str(view.flow_run_id))))
    spans = spans_repo.for_traces(traces)
    if not view.events and view.flow_run is None and not spans:
        exit_with_error(f"neither Prefect nor the ledger knows flow run {run_id}")
    data = timeline(view, spans)
    if export is not None:
        export.write_text(json.dumps(data, indent=2))
        console.print(f"Wrote the timeline of {run_id} to {export}.")
        return
    title = data["prefect"]["name"] if data["prefect"] else str(view.flow_run_id)
    if spans:
        from wflo_prefect.cli._span_tree import span_tree

        console.print(span_tree(spans, f"[bold]flow run {title}[/bold]  trace {', '.join(traces)}"))
        return
    if traces:
        console.print(
            f"[dim]No spans of trace {', '.join(traces)} in the ledger: look it up in your "
            "collector, or set PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER=true to keep them "
            "here. The timeline from the audit trail:[/dim]"
        )
    tree = Tree(f"[bold]flow run {title}[/bold]  trace {', '.join(data['trace_ids']) or '-'}")
    by_task: dict[str | None, list[Any]] = {}
    for event in view.events:
        by_task.setdefault(event.task_run_id, []).append(event)
    for event in by_task.pop(None, []):
        tree.add(f"{event.occurred_at:%H:%M:%S.%f} {event.event} {event.outcome or ''}")
    for task_run_id, events in by_task.items():
        branch = tree.add(f"task {events[0].task_name} ({task_run_id})")
        for event in events:
            branch.add(f"{event.occurred_at:%H:%M:%S.%f} {event.event} {event.outcome or ''}")
    console.print(tree)


def logs(
    run_id: str = typer.Argument(..., help="The flow run id (a UUID)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the run ends."),
    wflo_only: bool = typer.Option(False, help="Only wflo's own structured lines."),
) -> None:
    """Print a flow run's logs from the Prefect API (wflo's JSON lines included)."""
    from prefect.client.orchestration import get_client

    from wflo_prefect.cli._runs import parse_run_id

    flow_run_id = parse_run_id(run_id)
    seen: set[Any] = set()
    newest = None
    with get_client(sync_client=True) as client:
        while True:
            printed = _print_new_logs(client, flow_run_id, seen, newest, wflo_only)
            newest = max(filter(None, (newest, printed)), default=None)
            if not follow:
                break
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_final():
                follow = False  # one last read picks up lines written at the end
            time.sleep(1)


def _print_new_logs(
    client: Any, flow_run_id: Any, seen: set[Any], newest: Any, wflo_only: bool
) -> Any:
    """Print the run's log lines not printed yet; the newest timestamp printed.

    Prefect ships logs in batches, so a line can arrive after newer ones: each read
    looks back 30 s before the newest line seen, and skips lines already printed.
    """
    from datetime import timedelta

    from prefect.client.schemas.filters import (
        LogFilter,
        LogFilterFlowRunId,
        LogFilterTimestamp,
    )
    from prefect.client.schemas.sorting import LogSort

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    if newest is not None:
        log_filter.timestamp = LogFilterTimestamp(after_=newest - timedelta(seconds=30))
    offset, latest = 0, None
    while True:
        batch = client.read_logs(
            log_filter=log_filter, sort=LogSort.TIMESTAMP_ASC, limit=200, offset=offset
        )
        offset += len(batch)
        for log in batch:
            if log.id in seen:
                continue
            seen.add(log.id)
            latest = log.timestamp if latest is None else max(latest, log.timestamp)
            if wflo_only and not log.name.startswith("wflo_prefect"):
                continue
            console.print(f"{log.timestamp:%H:%M:%S.%f} {log.name}: {log.message}", markup=False)
        if len(batch) < 200:
            return latest
