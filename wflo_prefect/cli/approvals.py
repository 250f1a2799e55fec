"""``wflo approvals``: list, show, approve, reject, sweep and serve approval requests.

Deciding from the CLI proves who you are with your API key (``--api-key`` or
``WFLO_APPROVER_API_KEY``) when the gate names approvers from an Approvers block.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import WfloError

if TYPE_CHECKING:
    from wflo_prefect.ledger.approvals import ApprovalRequestRecord

app = typer.Typer(help="Approval gates: see and decide pending requests.", no_args_is_help=True)


def _get(request_id: str) -> ApprovalRequestRecord:
    from wflo_prefect.approvals.errors import DecisionRefused
    from wflo_prefect.ledger import get_ledger

    request = get_ledger().approvals.get(request_id)
    if request is None:
        from wflo_prefect.approvals.events import refused

        error = DecisionRefused(
            "unknown_request",
            "There is no approval request with this id",
            value=request_id,
            hint="List them with `wflo approvals list --status all`",
        )
        refused(None, error, channel="cli", claimed_id=request_id)
        exit_with_error(error)
    return request


@app.command("list")
def list_requests(
    status: str = typer.Option("pending", help="pending, approved, rejected, timed_out, all."),
    limit: int = typer.Option(50, min=1, help="At most this many, newest first."),
) -> None:
    """List approval requests."""
    from wflo_prefect.ledger import get_ledger

    try:
        requests = get_ledger().approvals.list_requests(
            status=None if status == "all" else status, limit=limit
        )
    except WfloError as exc:
        exit_with_error(exc)
    table = Table(title=f"Approval requests ({status})", title_justify="left")
    for column in ("id", "action", "status", "approvers", "quorum", "created (UTC)", "deadline"):
        table.add_column(column)
    for r in requests:
        table.add_row(
            r.id,
            r.action,
            r.status,
            ", ".join(map(str, r.approvers)) or "anyone",
            str(r.quorum),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.deadline_at.strftime("%H:%M:%S") if r.deadline_at else "",
        )
    console.print(table)


@app.command("show")
def show(request_id: str = typer.Argument(..., help="Request id (or a unique prefix).")) -> None:
    """Show one request: details, digest, decisions so far."""
    from wflo_prefect.ledger import get_ledger

    request = _get(request_id)
    console.print(f"[bold]{request.action}[/bold]  ({request.status})")
    console.print(f"id        {request.id}")
    console.print(f"flow run  {request.flow_run_id}")
    console.print(f"digest    {request.digest}")
    console.print(f"approvers {', '.join(map(str, request.approvers)) or 'anyone'}")
    console.print(f"quorum    {request.quorum}   tier {request.tier}")
    if request.deadline_at:
        console.print(f"deadline  {request.deadline_at.isoformat()}")
    console.print("details   " + json.dumps(request.details, indent=2, default=str))
    votes = get_ledger().approvals.votes(request.id)
    if votes:
        table = Table(title="Decisions", title_justify="left")
        for column in ("approver", "decision", "channel", "comment", "at (UTC)"):
            table.add_column(column)
        for v in votes:
            table.add_row(
                v.approver,
                "approve" if v.approved else "reject",
                v.channel,
                v.comment or "",
                v.decided_at.strftime("%H:%M:%S.%f")[:-3],
            )
        console.print(table)


def _decide(
    request_id: str,
    approve: bool,
    approver: str,
    api_key: str | None,
    comment: str | None,
    digest: str | None,
) -> None:
    from wflo_prefect.approvals.decisions import Vote, verify_api_key
    from wflo_prefect.approvals.errors import DecisionRefused
    from wflo_prefect.approvals.events import refused
    from wflo_prefect.approvals.settle import decide

    request = _get(request_id)
    try:
        verify_api_key(request, approver, api_key)
    except DecisionRefused as exc:
        refused(request, exc, channel="cli", actor=approver)
        exit_with_error(exc)
    try:
        after = decide(
            request.id,
            Vote(
                approver=approver,
                approved=approve,
                digest=digest or request.digest,
                channel="cli",
                comment=comment,
            ),
        )
    except WfloError as exc:
        exit_with_error(exc)
    verb = "approved" if approve else "rejected"
    console.print(f"{approver} {verb} {after.action!r} ({after.id}); request is {after.status}.")


_AS = typer.Option(..., "--as", help="Your approver name.")
_KEY = typer.Option(
    None, "--api-key", envvar="WFLO_APPROVER_API_KEY", help="Your API key.", show_default=False
)
_COMMENT = typer.Option(None, "--comment", "-m", help="Why (kept in the audit log).")
_DIGEST = typer.Option(
    None, "--digest", help="Digest you reviewed (from `show`); refused if details changed."
)


@app.command("approve")
def approve(
    request_id: str = typer.Argument(..., help="Request id (or a unique prefix)."),
    approver: str = _AS,
    api_key: str | None = _KEY,
    comment: str | None = _COMMENT,
    digest: str | None = _DIGEST,
) -> None:
    """Approve a pending request (resumes the run when the quorum is reached)."""
    _decide(request_id, True, approver, api_key, comment, digest)


@app.command("reject")
def reject(
    request_id: str = typer.Argument(..., help="Request id (or a unique prefix)."),
    approver: str = _AS,
    api_key: str | None = _KEY,
    comment: str | None = _COMMENT,
    digest: str | None = _DIGEST,
) -> None:
    """Reject a pending request (the run raises ApprovalRejected)."""
    _decide(request_id, False, approver, api_key, comment, digest)


@app.command("sweep")
def sweep_command() -> None:
    """Apply deadlines and outcomes of requests whose waiting process is gone."""
    from wflo_prefect.approvals.settle import sweep

    try:
        handled = sweep()
    except WfloError as exc:
        exit_with_error(exc)
    console.print(f"Settled {len(handled)} request(s) of runs whose gate process is gone.")
    for request_id in handled:
        console.print(f"  {request_id}")


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8787, help="Port to listen on."),
    sweep_every: float = typer.Option(
        10.0, help="Seconds between sweeps of requests whose gate process is gone (0: off)."
    ),
) -> None:
    """Run the approval service: Slack interactivity, signed links, REST API (OpenAPI)."""
    import uvicorn

    from wflo_prefect.approvals.service import create_app

    uvicorn.run(create_app(sweep_every=sweep_every), host=host, port=port, log_level="info")
