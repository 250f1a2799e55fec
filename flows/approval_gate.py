"""An agent that must ask a human before it deletes data, answered from the CLI.

    python flows/approval_gate.py

The governed task ``delete_stale_rows`` is gated by ``approval=``: the run pauses
with the task's arguments shown in the Prefect UI form, and waits. In another
terminal::

    wflo approvals list
    wflo approvals approve <REQUEST_ID> --as ops-lead -m "looks right"

and the run continues within milliseconds (or ``wflo approvals reject ...`` and
it stops with ``ApprovalRejected``). With ``--auto-approve`` this script answers
itself from the CLI after two seconds, so the demo runs unattended.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from wflo_prefect import ApprovalPolicy, governed_flow, governed_task
from wflo_prefect.ledger import get_ledger


@governed_task(
    operation="delete stale customer rows",
    approval=ApprovalPolicy(timeout=600, on_timeout="reject"),
)
def delete_stale_rows(table: str, older_than_days: int) -> int:
    """Pretend to delete rows; only runs once a human approved these arguments."""
    print(f"deleting rows of {table} older than {older_than_days} days")
    return 1234


@governed_flow(name="approval-gate-demo")
def cleanup_agent(table: str = "customers", older_than_days: int = 365) -> int:
    """An agent decided to clean up; a human has the last word."""
    return delete_stale_rows(table, older_than_days)


def _approve_from_cli_soon() -> None:
    """Answer like an operator would: `wflo approvals approve ID --as ops-lead`."""
    for _ in range(600):
        pending = [r for r in get_ledger().approvals.list_requests() if r.keyset]
        if pending:
            time.sleep(2)
            wflo = str(Path(sys.executable).with_name("wflo"))
            command = [
                wflo,
                "approvals",
                "approve",
                pending[0].id,
                "--as",
                "ops-lead",
                "-m",
                "demo approval",
            ]
            subprocess.run(command, check=True, env=os.environ)
            return
        time.sleep(0.1)


if __name__ == "__main__":
    if "--auto-approve" in sys.argv:
        threading.Thread(target=_approve_from_cli_soon, daemon=True).start()
    print("deleted", cleanup_agent(), "rows")
