"""``wflo policies``: check a policy file, and try it on a context before it governs runs.

The policy engine (and with it the ``cel`` extension) is imported inside the
commands, so ``wflo --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import InvalidArgumentError, WfloError

__all__ = ["app"]

app = typer.Typer(help="Policy files: lint them, try them on a context.", no_args_is_help=True)

_FILE = typer.Argument(..., help="A YAML (or JSON) policy file.", exists=False)


@app.command("lint")
def lint(file: Path = _FILE) -> None:
    """Check a policy file: syntax, names, functions, fields, types, unreachable rules."""
    from wflo_prefect.policies.files import lint_policies, load_policies

    try:
        policies = load_policies(file)
    except WfloError as exc:
        exit_with_error(exc)
    findings = lint_policies(policies)
    for finding in findings:
        console.print(f"{file}: rule {finding.rule} ({finding.name!r}): {finding.problem}")
    if findings:
        raise typer.Exit(1)
    console.print(f"{file}: {len(policies)} rule(s), no problems")


@app.command("test")
def try_file(
    file: Path = _FILE,
    context: str = typer.Option(
        "{}", "--context", "-c", help="The names a condition sees, as JSON, e.g. '{\"cost\": 120}'."
    ),
    point: str = typer.Option("run", "--point", "-p", help="run, spend or sandbox."),
) -> None:
    """Which rules of FILE match a context, and which actions would fire (nothing is run)."""
    from rich.table import Table

    from wflo_prefect.policies.files import load_policies, try_policies

    try:
        values = json.loads(context)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        exit_with_error(
            InvalidArgumentError(
                "--context must be a JSON object",
                value=context,
                hint=f'{exc}; e.g. --context \'{{"cost": 120, "operation": "delete"}}\'',
                docs="policies.md",
            )
        )
    try:
        results = try_policies(load_policies(file), point, values)
    except WfloError as exc:
        exit_with_error(exc)
    table = Table(title=f"{file} at {point}", title_justify="left")
    for column in ("#", "rule", "matches", "would fire"):
        table.add_column(column)
    fired: list[str] = []
    for number, (policy, hit) in enumerate(results, start=1):
        shown = "-" if hit is None else ("yes" if hit else "no")
        actions = ", ".join(a.kind for a in policy.actions) if hit else ""
        if hit:
            fired.extend(f"{a.kind} ({policy.name})" for a in policy.actions)
        table.add_row(str(number), policy.name, shown, actions)
    console.print(table)
    console.print(f"would fire: {', '.join(fired) if fired else 'nothing'}")
