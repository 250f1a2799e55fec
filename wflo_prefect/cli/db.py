"""``wflo db``: the governance ledger's schema."""

from __future__ import annotations

import typer

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import WfloError

app = typer.Typer(help="Manage the governance ledger database.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(
    url: str | None = typer.Option(
        None, help="Ledger URL; default: PREFECT_INTEGRATIONS_WFLO_LEDGER_URL or SQLite."
    ),
) -> None:
    """Apply the ledger's migrations up to the newest revision."""
    from wflo_prefect.ledger.engine import create_ledger_engine, current_revision, upgrade
    from wflo_prefect.settings import get_settings

    target = url or get_settings().ledger_url_value()
    try:
        engine = create_ledger_engine(target)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except WfloError as exc:
        exit_with_error(exc)
    shown = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"Ledger at {shown} is up to date (revision {after}).")
    else:
        console.print(f"Ledger at {shown} upgraded from {before or 'empty'} to {after}.")


@app.command("revision")
def db_revision(url: str | None = typer.Option(None, help="Ledger URL.")) -> None:
    """Show the ledger's current and newest schema revisions."""
    from wflo_prefect.ledger.engine import create_ledger_engine, current_revision, head_revision
    from wflo_prefect.settings import get_settings

    target = url or get_settings().ledger_url_value()
    try:
        engine = create_ledger_engine(target)
        current = current_revision(engine)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(f"current: {current or 'empty'}")
    console.print(f"head:    {head_revision()}")
