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


def test_resumers_of_one_pause_at_once_one_wins_none_fails(ledger: Ledger) -> None:
    """Four resumers of one pause at once: one moves the run on, the others get False.

    Seen at scale on a busy server: the gate (woken by its poll) resumed its own run
    while the approval service's resume of the same pause was in flight. (Prefect's
    409 for a loser whose answer collides is covered in
    ``tests/unit/test_approvals_resume_conflict.py``.)
    """
    from wflo_prefect.approvals.prefect_run import resume_run

    @flow
    def ship() -> object:
        return require_approval("ship it twice", details={"v": 2})

    future = start_flow(ship)
    request = paused_request("ship it twice")
    run_id = UUID(request.flow_run_id or "")
    answer = {"decision": "approve", "approver": "ops", "comment": ""}  # fits its form
    start = threading.Barrier(4)
    results: list[bool] = []
    errors: list[BaseException] = []

    def resume() -> None:
        start.wait()
        try:
            results.append(resume_run(run_id, answer, check=False))
        except BaseException as exc:
            errors.append(exc)

    resumers = [threading.Thread(target=resume) for _ in range(4)]
    for resumer in resumers:
        resumer.start()
    for resumer in resumers:
        resumer.join(timeout=60)
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    state = future.result(timeout=60)
    assert state.is_completed(), state
