"""The Prefect side of a gate: pause the run with the form, read answers, resume, end.

Only Prefect's public client calls and input helpers are used, the same ones
``pause_flow_run`` uses: propose a ``Paused`` state with a pause key and an input
keyset, save the form's schema and description, and read the response the UI
(or wflo) stored when it resumed the run.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.input import RunInput
from prefect.states import Crashed, Failed
from prefect.utilities.engine import propose_state_sync

from wflo_prefect._prefect_client import prefect_client
from wflo_prefect._prefect_compat import (
    paused_state_with_input,
    run_input_description,
    run_input_schema,
)
from wflo_prefect.approvals.errors import ApprovalGateError
from wflo_prefect.approvals.run_input import ApprovalInput, approval_form
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = [
    "end_run",
    "pause_run",
    "read_answer",
    "read_state",
    "refresh_form",
    "resume_run",
]


def pause_run(
    flow_run_id: UUID, request: ApprovalRequestRecord, attempt: int, timeout_s: float | None
) -> tuple[str, datetime]:
    """Pause the run with the approval form; return the input keyset's base key and
    the ``Paused`` state's timestamp (the server's clock, as on its state events).

    ``timeout_s`` is Prefect's own pause timeout, which the gate sets beyond its
    deadline so a run never ends in Prefect's generic pause failure.
    """
    # Unique per pause: Prefect refuses a pause key a run has already used.
    pause_key = f"wflo-{request.id}-{attempt}-{secrets.token_hex(3)}"
    proposed, keyset = paused_state_with_input(
        pause_key, int(timeout_s) if timeout_s is not None else None
    )
    with prefect_client() as client:
        state = propose_state_sync(client=client, state=proposed, flow_run_id=flow_run_id)
    if not state.is_paused():
        raise ApprovalGateError(
            "Prefect did not let the run pause for approval",
            value=str(state),
            hint="Check the run is not cancelling or already finished",
        )
    _save_form(approval_form(request), keyset["schema"], keyset["description"], flow_run_id)
    return keyset["response"].removesuffix("-response"), state.timestamp


def read_state(flow_run_id: UUID | str) -> State[Any] | None:
    """The run's current state, or ``None`` when Prefect does not know the run."""
    try:
        with prefect_client() as client:
            return client.read_flow_run(UUID(str(flow_run_id))).state
    except ObjectNotFound:
        return None


def _save_form(form: type[RunInput], schema_key: str, description_key: str, run: UUID) -> None:
    # What RunInput.save does, through the sync client: the gate blocks in a thread
    # even in async flows, where Prefect's dispatching helpers hand back coroutines.
    schema = run_input_schema(form)
    description = run_input_description(form)
    with prefect_client() as client:
        client.create_flow_run_input(run, key=schema_key, value=orjson.dumps(schema).decode())
        if description:
            client.create_flow_run_input(
                run, key=description_key, value=orjson.dumps(description).decode()
            )


def _replace_form(form: type[RunInput], schema_key: str, description_key: str, run: UUID) -> None:
    with prefect_client() as client:
        for key in (schema_key, description_key):
            try:
                client.delete_flow_run_input(flow_run_id=run, key=key)
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 404:  # 404: a form without description
                    raise
    try:
        _save_form(form, schema_key, description_key, run)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != 409:  # 409: another resumer saved it just now
            raise


def refresh_form(flow_run_id: UUID, base_key: str, request: ApprovalRequestRecord) -> None:
    """Save the form again for a paused run (the approvers changed: an escalation)."""
    _replace_form(
        approval_form(request), f"{base_key}-schema", f"{base_key}-description", flow_run_id
    )


def read_answer(flow_run_id: UUID, base_key: str) -> dict[str, Any] | None:
    """The answer stored when the run was resumed (as submitted), removed once read."""
    key = f"{base_key}-response"
    with prefect_client() as client:
        try:
            raw = client.read_flow_run_input(flow_run_id=flow_run_id, key=key)
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 404:
                return None
            raise
    # Removed off the gate's path: the answer is already read, and its key belongs to
    # this one pause (a later pause has another), so nothing reads it again.
    threading.Thread(
        target=_delete_input, args=(flow_run_id, key), name="wflo-approval-answer-delete"
    ).start()
    value: Any = orjson.loads(raw) if raw else None
    return value if isinstance(value, dict) and value else None


def _delete_input(flow_run_id: UUID, key: str) -> None:
    with prefect_client() as client:
        try:
            client.delete_flow_run_input(flow_run_id=flow_run_id, key=key)
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise


def _resume_once(client: Any, run_id: UUID, answer: dict[str, Any]) -> Any:
    """One resume; None when Prefect answers 409: another resumer stored the answer first.

    Two resumers of one pause (the approval service and the gate itself, woken by its
    poll) may both find the run paused; the second one's answer then collides with the
    first's in Prefect's run input. The first one moves the run on.
    """
    try:
        return client.resume_flow_run(run_id, run_input=answer)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 409:
            return None
        raise


def resume_run(flow_run_id: UUID | str, answer: dict[str, Any], *, check: bool = True) -> bool:
    """Resume a paused run with a typed answer; False when it was not paused.

    ``check=False`` skips reading the run first (one API call instead of two).
    """
    run_id = UUID(str(flow_run_id))
    with prefect_client() as client:
        if check:
            run = client.read_flow_run(run_id)
            if run.state is None or not run.state.is_paused():
                return False
        response = _resume_once(client, run_id, answer)
        for _ in range(_SCHEMA_RETRIES):
            # The form is being replaced (delete, then save): exactly one party resumes
            # (a claim in the ledger), but the waiting gate replaces the form when a
            # tier's deadline escalates, which a decision can meet: wait for it.
            if response is None or not (
                response.status == SetStateStatus.REJECT and _schema_missing(response)
            ):
                break
            time.sleep(0.1)
            response = _resume_once(client, run_id, answer)
        if response is None:
            return False  # another resumer stored this pause's answer first
        if response.status == SetStateStatus.REJECT and _invalid_input(response):
            # wflo resumes settled requests; its answer need not fit this request's
            # form (a timeout has no approver, a quorum several). The answer type's
            # schema accepts it, and the gate reads the ledger, not the answer.
            run = client.read_flow_run(run_id)
            keyset = run.state.state_details.run_input_keyset if run.state else None
            if keyset:
                _replace_form(ApprovalInput, keyset["schema"], keyset["description"], run_id)
                response = _resume_once(client, run_id, answer)
    if response is None:
        return False
    if response.status == SetStateStatus.ACCEPT:
        return True
    if response.status == SetStateStatus.ABORT:
        return False  # not paused (any more): someone else resumed it first
    raise ApprovalGateError(
        "Prefect refused to resume the run",
        value=str(flow_run_id),
        hint=f"Prefect said: {getattr(response.details, 'reason', response.status)}",
    )


_SCHEMA_RETRIES = 50


def _schema_missing(response: Any) -> bool:
    return str(getattr(response.details, "reason", "")).startswith("Run input schema not found")


def _invalid_input(response: Any) -> bool:
    # Prefect's words when the input does not validate against the saved schema.
    return str(getattr(response.details, "reason", "")).startswith("Reason:")


def end_run(flow_run_id: UUID | str, message: str, *, crashed: bool = False) -> None:
    """Put a run whose waiting process is gone into a final state with ``message``."""
    state: State[Any] = Crashed(message=message) if crashed else Failed(message=message)
    with prefect_client() as client:
        run = client.read_flow_run(UUID(str(flow_run_id)))
        if run.state is not None and run.state.type in (
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.CANCELLED,
        ):
            return
        client.set_flow_run_state(UUID(str(flow_run_id)), state=state, force=True)
