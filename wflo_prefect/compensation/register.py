"""``compensate(...)``: write down how to undo a side effect, right after making it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wflo_prefect.compensation.handlers import check_json, handler_ref
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.compensations import CompensationRecord
from wflo_prefect.observability.correlation import current_correlation

__all__ = ["compensate", "register_compensation"]


def compensate(
    handler: Callable[..., Any],
    /,
    *args: Any,
    name: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = 3,
    retry_delay_s: float = 1.0,
    **kwargs: Any,
) -> CompensationRecord:
    """Register ``handler(*args, **kwargs)`` to undo what the current run just did.

    If the flow run fails, its compensations run in reverse order of registration,
    each retried up to ``max_attempts`` times, and each at most once to success
    (a handler that accepts ``idempotency_key`` receives it, to pass on to the
    system it calls). If the run succeeds they are released and never run. The
    log is in the ledger, so ``wflo compensate run RUN_ID`` can finish the job
    after the process was killed.

    Registering the same ``idempotency_key`` twice (e.g. from a retried task)
    keeps the first registration.
    """
    return register_compensation(
        handler,
        args,
        kwargs,
        name=name,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
        retry_delay_s=retry_delay_s,
    )


def register_compensation(
    handler: Callable[..., Any],
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    *,
    name: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = 3,
    retry_delay_s: float = 1.0,
) -> CompensationRecord:
    """:func:`compensate` with the handler's arguments given as a tuple and a dict."""
    ids = current_correlation()
    if ids.flow_run_id is None:
        raise InvalidArgumentError(
            "compensate() registers an undo step for a flow run; call it inside one",
            value=getattr(handler, "__qualname__", handler),
            docs="compensation.md",
        )
    if max_attempts < 1 or retry_delay_s < 0:
        raise InvalidArgumentError(
            "max_attempts must be at least 1 and retry_delay_s not negative",
            value=(max_attempts, retry_delay_s),
        )
    ref = handler_ref(handler)
    label = name or ref.rpartition(":")[2]
    arguments = check_json({"args": list(args), "kwargs": kwargs}, f"compensation {label!r}")
    seq = time.time_ns()
    key = idempotency_key or f"{ids.flow_run_id}:{ids.task_run_id or 'flow'}:{label}:{seq}"
    record, new = get_ledger().compensations.register(
        flow_run_id=ids.flow_run_id,
        task_run_id=ids.task_run_id,
        seq=seq,
        name=label,
        handler=ref,
        arguments=arguments,
        idempotency_key=key,
        max_attempts=max_attempts,
        retry_delay_s=retry_delay_s,
    )
    if new:
        get_ledger().audit.record(
            "compensation.registered",
            correlation=ids,
            payload={"name": label, "handler": ref, "idempotency_key": key},
        )
    from wflo_prefect.compensation.heartbeat import ensure_heartbeat

    ensure_heartbeat(ids.flow_run_id)  # so recovery can tell a dead run from a slow one
    return record
