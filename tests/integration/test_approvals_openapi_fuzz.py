"""Schemathesis over the approval service's OpenAPI document: no input makes it answer 5xx.

The app runs in-process (ASGI, nothing listens on a port). Every operation gets
bounded generated cases, sent once as generated and once aimed at a real
pending request with an approver's API key, so bodies reach the decision code.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from test_approvals_gate import KEYS

from wflo_prefect.approvals import hash_api_key
from wflo_prefect.approvals.service import create_app
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord


@pytest.fixture
def fuzzed_app(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The service with secrets configured and one pending request of alice and bob."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET", "link-secret")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SLACK_SIGNING_SECRET", "slack-secret")
    return create_app(sweep_every=0)


def _pending(ledger: Ledger) -> ApprovalRequestRecord:
    found = ledger.approvals.list_requests(status="pending")
    if found:
        return found[0]
    return ledger.approvals.create(
        action="fuzzed",
        details={"n": 1},
        digest="d" * 64,
        approvers=["alice", "bob"],
        quorum=2,
        policy={
            "principals": {
                n: {"email": None, "slack_id": None, "api_key_hashes": [hash_api_key(KEYS[n])]}
                for n in ("alice", "bob")
            }
        },
    )


def test_no_generated_input_makes_the_service_fail(fuzzed_app: FastAPI, ledger: Ledger) -> None:
    """Generated requests to every route, anonymous and as an approver, never get a 5xx."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])
            if "request_id" in (case.path_parameters or {}):
                real = _pending(ledger).id
                case.path_parameters = {**(case.path_parameters or {}), "request_id": real}
                case.headers = {**(case.headers or {}), "X-API-Key": KEYS["alice"]}
                case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
