"""The rich console the CLI prints to, and how it reports errors."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from wflo_prefect.errors import WfloError

__all__ = ["console", "exit_with_error"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def exit_with_error(error: WfloError | str, code: int = 1) -> NoReturn:
    """Print ``error`` in red on stderr and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(code)
