"""When the process waiting at a gate dies, the decision or the timeout still settles the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from approval_support import paused_request, wait_for
from fakes.webhook_receiver import WebhookReceiver
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from wflo_prefect import WebhookApprovalChannel
from wflo_prefect.approvals import sweep
from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

WORKER = Path(__file__).with_name("approval_gate_worker.py")


def _start_and_kill(ledger: Ledger, action: str, timeout: float, *extra: str) -> str:
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
            hide_password=False
        ),
    }
    process = subprocess.Popen(
        [sys.executable, str(WORKER), action, str(timeout), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = paused_request(action, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert request.flow_run_id
    return request.id


def _artifact(request: ApprovalRequestRecord) -> str:
    """The markdown of the request's artifact on its run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from wflo_prefect.approvals.artifact import artifact_key

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(request)]))
        )
    assert len(found) == 1
    return str(found[0].data)


def test_decision_settles_run_of_dead_waiter(ledger: Ledger) -> None:
    """Rejected from the CLI after the waiter was killed: the run ends Failed, saying why."""
    request_id = _start_and_kill(ledger, "drop table", 120)
    result = CliRunner().invoke(
        app,
        [
            "approvals",
            "reject",
            request_id,
            "--as",
            "bob",
            "--api-key",
            "key-bob",
            "-m",
            "too risky",
        ],
    )
    assert result.exit_code == 0, result.output
    request = ledger.approvals.get(request_id)
    assert request is not None
    assert request.status == "rejected"
    state = read_state(request.flow_run_id or "")
    assert state is not None
    assert state.is_failed()
    assert "rejected" in (state.message or "")
    assert "bob" in (state.message or "")
    assert (ledger.approvals.get(request_id) or request).applied_by == "sweep"
    shown = _artifact(request)  # the run page shows the outcome, not "pending"
    assert "stops" in shown
    assert "bob" in shown
    assert "too risky" in shown


@pytest.mark.parametrize("timeout", [1.0])
def test_timeout_settles_run_of_dead_waiter(ledger: Ledger, timeout: float) -> None:
    """The deadline passes with nobody waiting: a sweep applies on_timeout and ends the run."""
    request_id = _start_and_kill(ledger, "resize cluster", timeout)
    time.sleep(timeout)
    settled = wait_for(lambda: sweep(), what="a sweep that settles the request")
    assert request_id in settled
    request = ledger.approvals.get(request_id)
    assert request is not None
    assert request.status == "timed_out"
    state = read_state(request.flow_run_id or "")
    assert state is not None
    assert state.is_failed()
    assert "timed out" in (state.message or "")


def test_sweep_escalates_and_closes_through_saved_channels(ledger: Ledger) -> None:
    """With the waiter dead, the sweep notifies the next tier's saved webhook, then closes it."""
    receiver = WebhookReceiver("dead-secret")
    try:
        WebhookApprovalChannel(url=receiver.url, secret="dead-secret").save(
            "dead-waiter-hook", overwrite=True
        )
        request_id = _start_and_kill(ledger, "rotate secrets", 1.0, "dead-waiter-hook")

        def settled() -> bool:
            sweep()
            current = ledger.approvals.get(request_id)
            return current is not None and current.closed_at is not None

        wait_for(settled, timeout=30, what="escalation, timeout and close by sweeps")
    finally:
        receiver.close()
    kinds = [(body["type"], body["request"].get("tier")) for _ok, body in receiver.received]
    assert kinds == [("approval.requested", 1), ("approval.decided", None)]
    assert all(ok for ok, _ in receiver.received)
    request = ledger.approvals.get(request_id)
    assert request is not None
    assert request.status == "timed_out"
    assert request.approvers == ["bob", "carol"]
    state = read_state(request.flow_run_id or "")
    assert state is not None
    assert state.is_failed()
