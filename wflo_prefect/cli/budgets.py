"""``wflo budgets``: the budgets governed flows registered, the central budgets saved as
blocks, and their current windows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import WfloError

__all__ = ["app"]

app = typer.Typer(help="Budgets and how much of them is spent.", no_args_is_help=True)


@app.command("list")
def list_budgets() -> None:
    """Every budget registered by a governed run (name, scope, limit, period, action)."""
    from wflo_prefect.ledger import get_ledger

    try:
        budgets = get_ledger().costs.budgets()
    except WfloError as exc:
        exit_with_error(exc)
    if not budgets:
        console.print("No budgets registered yet (they are registered when a governed run starts).")
        return
    table = Table(title="Budgets", title_justify="left")
    for column in (
        "name",
        "scope",
        "limit (USD)",
        "period",
        "time zone",
        "thresholds",
        "on exceeded",
    ):
        table.add_column(column)
    for b in budgets:
        scope = f"{b.scope}={b.scope_value}" if b.scope_value else b.scope
        table.add_row(
            b.name,
            scope,
            str(b.max_usd),
            b.period,
            b.timezone,
            ", ".join(str(t) for t in b.alert_thresholds),
            b.on_exceeded,
        )
    console.print(table)


@app.command("central")
def central() -> None:
    """Central budgets (wflo Central Budget blocks): selector, limit, period, current spend."""
    from datetime import UTC

    from wflo_prefect.costs.central import read_central_budgets
    from wflo_prefect.ledger import get_ledger

    try:
        saved = read_central_budgets()
        if not saved:
            console.print(
                "No central budgets saved (create a 'wflo Central Budget' block; see "
                "docs/costs.md#central-budgets)."
            )
            return
        table = Table(title="Central budgets", title_justify="left")
        for column in (
            "name",
            "applies to",
            "scope",
            "limit (USD)",
            "period",
            "on exceeded",
            "notify",
            "spent this window",
            "used",
        ):
            table.add_column(column)
        ledger = get_ledger()
        for item in saved:
            budget = item.budget
            start = budget.window()[0].astimezone(UTC).replace(tzinfo=None)
            windows = [
                w
                for w in ledger.costs.windows(f"{budget.display_name}|")
                if _naive_utc(w.window_start) == start
            ]
            spent = sum((w.spent_usd for w in windows), Decimal(0))
            used = f"{spent / budget.max_usd * 100:.1f}%"
            if budget.scope != "global" and windows:
                # One limit per flow run / user ...: show the fullest of them.
                top = max(w.spent_usd for w in windows) / budget.max_usd * 100
                used = f"{top:.1f}% max of {len(windows)} {budget.scope} windows"
            table.add_row(
                item.name,
                item.block.applies_to,
                f"{budget.scope}={budget.scope_value}" if budget.scope_value else budget.scope,
                str(budget.max_usd),
                budget.period,
                budget.on_exceeded,
                ", ".join(str(t) for t in budget.notify) or "-",
                str(spent),
                used,
            )
    except WfloError as exc:
        exit_with_error(exc)
    console.print(table)


def _naive_utc(moment: datetime) -> datetime:
    from datetime import UTC

    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@app.command("status")
def status(
    name: str = typer.Argument(None, help="Only this budget."),
    limit: int = typer.Option(20, "--limit", min=1, help="Windows to show per budget."),
) -> None:
    """Spent, held and remaining money in each budget's newest windows."""
    from wflo_prefect.ledger import get_ledger

    try:
        ledger = get_ledger()
        names = [name] if name else [b.name for b in ledger.costs.budgets()]
        table = Table(title="Budget windows", title_justify="left")
        for column in (
            "budget key",
            "window start (UTC)",
            "limit",
            "spent",
            "held",
            "used",
            "alerts",
        ):
            table.add_column(column)
        rows = 0
        for budget_name in names:
            for w in ledger.costs.windows(f"{budget_name}|")[:limit]:
                used = (w.spent_usd / w.limit_usd * 100) if w.limit_usd else Decimal(0)
                leases, _leased = ledger.costs.open_leases(w.id)
                held = str(w.reserved_usd)
                if leases:
                    held += f" ({leases} lease{'s' if leases > 1 else ''})"
                table.add_row(
                    w.budget_key,
                    w.window_start.strftime("%Y-%m-%d %H:%M"),
                    str(w.limit_usd),
                    str(w.spent_usd),
                    held,
                    f"{used:.1f}%",
                    ", ".join(w.alerts_fired),
                )
                rows += 1
    except WfloError as exc:
        exit_with_error(exc)
    if not rows:
        console.print(
            "No spend recorded against " + (f"budget {name!r}." if name else "any budget.")
        )
        raise typer.Exit(1 if name else 0)
    console.print(table)


@app.command("reclaim")
def reclaim(
    older_than: str = typer.Option(
        "1h", "--older-than", help="Holds taken longer ago than this: 30m, 1h, 2d ..."
    ),
) -> None:
    """Give back money held by calls whose process died (holds older than --older-than)."""
    from wflo_prefect.cli.costs import parse_since
    from wflo_prefect.ledger import get_ledger

    try:
        cutoff = parse_since(older_than)
        expired = get_ledger().costs.expire_stale(cutoff)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(
        f"Gave back {expired} abandoned hold(s) taken before {cutoff:%Y-%m-%d %H:%M} UTC."
    )
