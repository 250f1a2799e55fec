"""The ``wflo`` command line (typer + rich, like Prefect's own CLI).

Each concern has its own module with its own typer app; this module assembles
them. Capabilities add their sub-commands here (``costs``, ``budgets``,
``approvals``, ``sandbox`` ...).
"""

from __future__ import annotations

import typer

from wflo_prefect._version import __version__
from wflo_prefect.cli import approvals as approvals_cli
from wflo_prefect.cli import budgets as budgets_cli
from wflo_prefect.cli import compensate as compensate_cli
from wflo_prefect.cli import costs as costs_cli
from wflo_prefect.cli import db, debug, doctor, runs
from wflo_prefect.cli import policies as policies_cli
from wflo_prefect.cli import sandbox as sandbox_cli
from wflo_prefect.cli import stack as stack_cli
from wflo_prefect.cli._console import console

__all__ = ["app", "main"]

app = typer.Typer(
    name="wflo",
    help="Safety controls for AI-agent workflows on Prefect.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
app.add_typer(db.app, name="db")
app.add_typer(approvals_cli.app, name="approvals")
app.add_typer(costs_cli.app, name="costs")
app.add_typer(budgets_cli.app, name="budgets")
app.add_typer(sandbox_cli.app, name="sandbox")
app.add_typer(compensate_cli.app, name="compensate")
app.add_typer(policies_cli.app, name="policies")
app.add_typer(stack_cli.app, name="stack")
app.command("debug")(debug.debug)
app.command("doctor")(doctor.doctor)
app.command("trace")(runs.trace)
app.command("logs")(runs.logs)


@app.command("version")
def version() -> None:
    """Print the versions of wflo-prefect and Prefect."""
    import prefect

    console.print(f"wflo-prefect {__version__}")
    console.print(f"prefect      {prefect.__version__}")


def main() -> None:
    """Entry point of the ``wflo`` console script."""
    app()
