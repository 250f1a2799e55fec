"""suspend=True: a deployed run suspends at the gate, exits, and passes it when rescheduled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from approval_support import paused_request, wait_for
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger

SERVED = Path(__file__).with_name("approval_suspend_flow.py")


def test_suspended_run_is_rescheduled_and_passes_after_cli_approval(ledger: Ledger) -> None:
    """The run suspends (no process waits); the CLI approves; the rescheduled run completes."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
            hide_password=False
        ),
    }
    server = subprocess.Popen(
        [sys.executable, str(SERVED)],
        env=env,
        cwd=SERVED.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = wait_for(lambda: _try_run_deployment(), timeout=60, what="the served deployment")
        request = paused_request("publish release", timeout=90)
        state = read_state(run.id)
        assert state is not None
        assert state.name == "Suspended"
        result = CliRunner().invoke(app, ["approvals", "approve", request.id, "--as", "erin"])
        assert result.exit_code == 0, result.output

        def completed() -> bool:
            final = read_state(run.id)
            return final is not None and final.is_completed()

        wait_for(completed, timeout=90, what="the rescheduled run to complete")
        settled = ledger.approvals.get(request.id)
        assert settled is not None
        assert settled.status == "approved"
        assert settled.applied_at is not None
    finally:
        server.terminate()
        server.wait(timeout=30)


def _try_run_deployment():  # type: ignore[no-untyped-def]
    try:
        return run_deployment("suspended-release/suspend-test", timeout=0)
    except Exception:
        return None
