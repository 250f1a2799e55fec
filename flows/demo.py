"""The README's demo: governed example flows on the embedded defaults.

Runs on an ephemeral Prefect server and the SQLite ledger under ``PREFECT_HOME``
(``scripts/demo.sh`` points it at ``.prefect-demo/``), then prints what wflo
governed and how to inspect it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from flows.data_cleanup import data_cleanup, seed_database
from wflo_prefect.cli.debug import render_audit
from wflo_prefect.testing import audit_trail

console = Console(highlight=False, width=max(120, Console().width))


def section(title: str) -> None:
    """Print a section heading."""
    console.rule(f"[bold]{title}")


def demo_audit(work: Path) -> str:
    """A governed data clean-up run, and its audit trail."""
    section("1. A governed flow: every run and task audited with its Prefect and trace ids")
    db = seed_database(work / "customers.db")
    state = data_cleanup(str(db), str(work / "archive"), return_state=True)
    result = state.result()
    console.print(f"data-cleanup finished [bold]{state.name}[/bold]: {result}")
    events = audit_trail(state)
    console.print(
        render_audit(events, f"Audit trail of flow run {state.state_details.flow_run_id}")
    )
    if not state.is_completed() or len(events) < 8:
        raise SystemExit("demo: the governed run did not complete with a full audit trail")
    return str(state.state_details.flow_run_id)


def main() -> int:
    """Run every demo section; exit 0 when each did what it shows."""
    home = Path(os.environ.get("PREFECT_HOME", ".prefect-demo"))
    work = home / "work"
    run_id = demo_audit(work)
    section("Inspect it yourself")
    console.print(f"  PREFECT_HOME={home} .venv/bin/wflo debug {run_id}")
    console.print(f"  ledger: {home / 'wflo' / 'ledger.db'} (SQLite, WAL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
