"""What a person sees on a waiting run's page: sentences in its logs, the request artifact."""

from __future__ import annotations

import json
import logging
import re
from uuid import UUID

from approval_support import paused_request, run_logs, start_flow, wait_for
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from test_approvals_gate import directory
from test_approvals_security import _stored

from wflo_prefect import require_approval
from wflo_prefect.approvals import Vote, decide
from wflo_prefect.approvals.artifact import artifact_key
from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.approvals.run_input import approval_form
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.observability.logging import RunLogHandler, run_log_text


def _artifact(request: ApprovalRequestRecord) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(request)]))
        )
    assert len(found) == 1, "one artifact per request, updated in place"
    assert str(found[0].flow_run_id) == request.flow_run_id
    return str(found[0].data)


def test_waiting_run_shows_a_sentence_and_the_request_artifact_then_the_outcome(
    ledger: Ledger,
) -> None:
    """The run's logs say what it waits for in words; its artifact turns into the outcome."""

    @flow
    def release() -> object:
        return require_approval(
            "ship release",
            details={"version": "2.0.0"},
            approvers=["alice", "bob"],
            principals=directory(),
            timeout=600,
        )

    future = start_flow(release)
    request = paused_request("ship release")
    flow_run_id = request.flow_run_id or ""
    line = wait_for(
        lambda: next((m for m in run_logs(flow_run_id) if "Approval requested" in m), None),
        what="the request sentence in the run's logs",
    )
    assert request.deadline_at is not None
    until = request.deadline_at.strftime("%H:%M UTC")
    assert line == (
        f"Approval requested: ship release — approvers alice, bob, quorum 1, until {until}; "
        "answer with the Resume button, the Slack message, the e-mailed link or "
        f"`wflo approvals approve {request.id}` (see this run's artifact)"
    )
    assert not any(m.startswith("{") for m in run_logs(flow_run_id)), "no raw JSON lines"
    pending = _artifact(request)
    assert pending.startswith("## Waiting for approval: ship release")
    for shown in ("| version | 2.0.0 |", "alice, bob", request.digest, "Resume", "REST API"):
        assert shown in pending
    assert f"wflo approvals approve {request.id} --as <your name> --api-key" in pending

    decide(request.id, Vote("bob", True, request.digest, "cli", comment="tests are green"))
    assert future.result(timeout=60).result().approvers == ["bob"]
    # Updated right after the run continues, off its path.
    outcome = wait_for(
        lambda: (text := _artifact(request)).startswith("## Approved: ship release") and text,
        what="the outcome in the artifact",
    )
    for shown in ("| decided by | bob |", "| channel | cli |", "tests are green", request.digest):
        assert shown in outcome
    assert re.search(r"\| when \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \|", outcome)
    wait_for(
        lambda: "The run continues: ship release approved by bob" in run_logs(flow_run_id),
        what="the outcome sentence in the run's logs",
    )


def test_escalation_updates_the_form_select_and_the_artifact(ledger: Ledger) -> None:
    """At a tier's deadline the form lists the new approvers and the artifact says so."""
    from wflo_prefect.approvals import EscalationTier

    @flow
    def rotate() -> object:
        return require_approval(
            "rotate keys",
            approvers=["alice"],
            principals=directory(),
            timeout=1,
            escalation=[EscalationTier(approvers=["bob"], timeout=600)],
        )

    future = start_flow(rotate)
    request = paused_request("rotate keys")
    flow_run_id = request.flow_run_id or ""

    def escalated() -> ApprovalRequestRecord | None:
        current = ledger.approvals.get(request.id)
        return current if current is not None and current.tier == 1 else None

    current = wait_for(escalated, what="the escalation to bob")

    def form_lists_bob() -> dict[str, object] | None:
        state = read_state(flow_run_id)
        assert state is not None
        keyset = state.state_details.run_input_keyset or {}
        with get_client(sync_client=True) as client:
            schema = json.loads(client.read_flow_run_input(UUID(flow_run_id), keyset["schema"]))
        names = schema["definitions"]["Approver"]["enum"]
        return schema if names == ["alice", "bob"] else None

    wait_for(form_lists_bob, what="bob in the form's approver select")
    wait_for(lambda: "alice, bob" in _artifact(current), what="bob in the artifact")
    decide(request.id, Vote("bob", False, request.digest, "cli"))
    assert future.result(timeout=60).is_failed()
    wait_for(
        lambda: _artifact(current).startswith("## Rejected: rotate keys"),
        what="the outcome in the artifact",
    )


def test_form_schema_has_required_choices_and_no_digest_field(ledger: Ledger) -> None:
    """The form's JSON schema: required decision and approver selects, code, no digest."""
    request = _stored(ledger)
    form = approval_form(request)
    schema = form.model_json_schema()
    assert schema["required"] == ["decision", "approver", "code"]
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert "default" not in schema["properties"]["decision"]
    assert schema["$defs"]["Approver"]["enum"] == ["alice", "bob", "carol"]
    assert "digest" not in schema["properties"]
    assert request.digest in str(form._description)
    open_gate = ledger.approvals.create(
        action="tidy", details={}, digest="b" * 64, approvers=[], quorum=1, policy={}
    )
    schema = approval_form(open_gate).model_json_schema()
    assert schema["required"] == ["decision", "approver"]
    assert schema["properties"]["approver"]["type"] == "string"


def test_budget_policy_sandbox_and_compensation_events_read_as_sentences() -> None:
    """Prefect's run log handler renders known events as sentences and keeps others as JSON."""
    cases = {
        "budget.refused": (
            {
                "budget": "team",
                "attempted_usd": "0.50",
                "spent_usd": "9.80",
                "reserved_usd": "0.10",
                "limit_usd": "10",
            },
            "Budget team refused a call of $0.50: $9.80 spent and $0.10 reserved of $10; "
            "the call was not sent",
        ),
        "policy.matched": (
            {"policy": "no-deletes", "point": "task", "name": "drop_table"},
            "Policy no-deletes matched at task of drop_table",
        ),
        "sandbox.run": (
            {
                "sandbox_id": "sbx1",
                "command": "python main.py",
                "image": "python:3.12-slim",
                "outcome": "ok",
                "exit_code": 0,
                "duration_s": 1.23456,
            },
            "Sandbox sbx1 ran `python main.py` in python:3.12-slim: ok, exit code 0 after 1.23 s",
        ),
        "compensation.attempt_failed": (
            {"name": "refund", "error": "TimeoutError: slow"},
            "Compensation refund failed: TimeoutError: slow",
        ),
    }
    handler = RunLogHandler()
    for event, (fields, sentence) in cases.items():
        assert run_log_text({"message": event, **fields}) == sentence
        record = logging.LogRecord(
            "wflo_prefect.x",
            logging.INFO,
            __file__,
            1,
            json.dumps({"message": event, **fields}),
            None,
            None,
        )
        assert handler.format(record) == sentence
    unknown = json.dumps({"message": "something.else", "a": 1})
    record = logging.LogRecord("wflo_prefect.x", logging.INFO, __file__, 1, unknown, None, None)
    assert handler.format(record) == unknown
    assert run_log_text({"message": "budget.refused"}) == (
        "Budget ? refused a call of $?: $? spent and $? reserved of $?; the call was not sent"
    )
