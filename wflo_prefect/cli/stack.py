"""``wflo stack``: run a Prefect server on PostgreSQL, workers, approvals and metrics locally."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import WfloError

if TYPE_CHECKING:
    from wflo_prefect.stack.spec import StackSpec

app = typer.Typer(
    help="A local production-shaped stack: Prefect server on PostgreSQL, a process and a "
    "docker-sandbox worker, the approval service and the metrics endpoint, on 127.0.0.1.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Stack directory (state, logs, env); default $WFLO_STACK_DIR or ~/.wflo/stack.",
    ),
]


def _spec(directory: Path | None, **options: object) -> StackSpec:
    from wflo_prefect.stack.spec import StackSpec, default_stack_dir

    return StackSpec(directory=(directory or default_stack_dir()).resolve(), **options)  # type: ignore[arg-type]


@app.command("up")
def up_command(
    directory: DirOption = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL to create the stack's databases in (a role with CREATEDB); "
            "default postgresql://wflo:wflo@127.0.0.1:5432/postgres, as provision.sh sets up.",
            envvar="WFLO_STACK_POSTGRES_URL",
        ),
    ] = None,
    database: Annotated[
        str, typer.Option(help="Prefect's database; the ledger gets DATABASE_ledger.")
    ] = "wflo_stack",
    server_port: Annotated[int, typer.Option(help="Prefect server and UI port.")] = 4200,
    approvals_port: Annotated[int, typer.Option(help="Approval service port.")] = 8787,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 9464,
    sandbox_worker: Annotated[
        bool,
        typer.Option(
            "--sandbox-worker/--no-sandbox-worker", help="Start the docker-sandbox worker."
        ),
    ] = True,
) -> None:
    """Start the stack; print every address; `wflo stack down` stops it."""
    from wflo_prefect.stack.lifecycle import up
    from wflo_prefect.stack.spec import DEFAULT_POSTGRES_URL

    spec = _spec(
        directory,
        postgres_url=postgres_url or DEFAULT_POSTGRES_URL,
        database=database,
        server_port=server_port,
        approvals_port=approvals_port,
        metrics_port=metrics_port,
        sandbox_worker=sandbox_worker,
        workdir=Path.cwd(),
    )
    try:
        up(spec, say=console.print)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(f"\n[bold]Stack up.[/bold] Prefect UI: [bold]{spec.ui_url}[/bold]")
    console.print(f"Use it from a shell:  source {spec.env_file}")
    console.print(
        f"Logs: {spec.directory / 'logs'}    Stop: wflo stack down --dir {spec.directory}"
    )


@app.command("down")
def down_command(directory: DirOption = None) -> None:
    """Stop every process of the stack (server, workers, approvals, metrics)."""
    from wflo_prefect.stack.lifecycle import down

    spec = _spec(directory)
    try:
        stopped = down(spec, say=console.print)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(f"Stack down ({len(stopped)} process(es) stopped).")


@app.command("status")
def status_command(directory: DirOption = None) -> None:
    """Show the stack's processes, their addresses and whether they run."""
    from wflo_prefect.stack.lifecycle import status

    current = status(_spec(directory))
    if not current.components:
        console.print(f"No stack recorded in {current.directory}.")
        raise typer.Exit(1)
    for component, running in current.components:
        state = "[green]up[/green]" if running else "[red]down[/red]"
        console.print(f"{component.name:18} {state:>6}  pid {component.pid:<8} {component.address}")
    if current.ui_url:
        console.print(f"Prefect UI: {current.ui_url}")


@app.command("env")
def env_command(directory: DirOption = None) -> None:
    """Print the `export` lines that point a shell at the stack."""
    spec = _spec(directory)
    if not spec.env_file.is_file():
        exit_with_error(f"No stack environment in {spec.directory}; run `wflo stack up`")
    typer.echo(spec.env_file.read_text(), nl=False)
