"""A decision resumes the run even while another resumer is replacing the run's form."""

from __future__ import annotations

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
