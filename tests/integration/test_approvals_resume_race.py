"""A decision resumes the run even while another resumer is replacing the run's form."""

from __future__ import annotations

import json
import threading
import time
from uuid import UUID

from approval_support import paused_request, start_flow
from prefect import flow
from prefect.client.orchestration import get_client

from wflo_prefect import require_approval
from wflo_prefect.approvals import Vote, decide
from wflo_prefect.approvals.prefect_run import _save_form
from wflo_prefect.approvals.run_input import approval_form
from wflo_prefect.ledger import Ledger


def test_a_decision_waits_out_a_form_being_replaced(ledger: Ledger) -> None:
    """The form's schema is briefly missing (another resumer replaces it): the resume retries."""

    @flow
    def ship() -> object:
        return require_approval("ship it", details={"v": 1})

    future = start_flow(ship)
    request = paused_request("ship it")
    run_id = UUID(request.flow_run_id or "")
    schema_key, description_key = f"{request.keyset}-schema", f"{request.keyset}-description"
    with get_client(sync_client=True) as client:  # what a replacing resumer does first
        for key in (schema_key, description_key):
            client.delete_flow_run_input(flow_run_id=run_id, key=key)

    def save_back_later() -> None:
        time.sleep(0.5)
        _save_form(approval_form(request), schema_key, description_key, run_id)

    saver = threading.Thread(target=save_back_later)
    saver.start()
    decide(request.id, Vote("ops", True, request.digest, "cli"))
    saver.join()
    state = future.result(timeout=60)
    assert state.is_completed(), state


def test_a_resume_that_loses_the_race_for_the_answer_is_no_error(ledger: Ledger) -> None:
    """Another resumer stored the run's answer first: Prefect answers 409; that is no failure.

    Seen at scale on a busy server: the gate (woken by its poll) resumed its own run
    while the approval service's resume of the same pause was in flight.
    """
    from wflo_prefect.approvals.prefect_run import resume_run

    @flow
    def ship() -> object:
        return require_approval("ship it twice", details={"v": 2})

    future = start_flow(ship)
    request = paused_request("ship it twice")
    run_id = UUID(request.flow_run_id or "")
    answer = {"decision": "approve", "approver": "ops", "code": "", "comment": ""}
    response_key = f"{request.keyset}-response"
    with get_client(sync_client=True) as client:  # the winner has stored its answer ...
        client.create_flow_run_input(flow_run_id=run_id, key=response_key, value=json.dumps(answer))
    assert resume_run(run_id, answer, check=False) is False
    with get_client(sync_client=True) as client:  # ... and now moves the run on
        client.delete_flow_run_input(flow_run_id=run_id, key=response_key)
    assert resume_run(run_id, answer) is True
    state = future.result(timeout=60)
    assert state.is_completed(), state
