"""The seeds' spelling: ``add_compensating_action(CompensatingAction(name=..., handler=...))``.

The same durable undo log as :func:`~wflo_prefect.compensate`: the handler is
stored by import path with JSON arguments, so another process can run it after
a crash. ``handler`` may be a ``functools.partial`` of an importable function;
its bound arguments are stored with it (a lambda cannot be, and is refused when
the action is built, naming it)::

    add_compensating_action(
        CompensatingAction(
            name="unsend_emails",
            handler=functools.partial(mailer.send_bulk, recipients, "Please disregard"),
        )
    )
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wflo_prefect.compensation.handlers import check_json, handler_ref
from wflo_prefect.compensation.register import register_compensation
from wflo_prefect.compensation.runner import CompensationReport, run_compensations
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger.compensations import CompensationRecord
from wflo_prefect.observability.correlation import current_correlation

__all__ = ["CompensatingAction", "add_compensating_action", "execute_compensating_actions"]


@dataclass(frozen=True)
class CompensatingAction:
    """How to undo one side effect: ``handler(*args, **kwargs)``, stored durably.

    Checked when built: ``handler`` must be importable by another process (or a
    ``functools.partial`` of such a function) and the arguments must be JSON.
    """

    name: str
    handler: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    max_attempts: int = 3
    retry_delay_s: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(
                "A CompensatingAction needs a name",
                value=self.name,
                hint="Pass name='what it undoes', e.g. name='unsend_emails'",
                docs="compensation.md",
            )
        handler, args, kwargs = self.call()
        handler_ref(handler)
        check_json({"args": list(args), "kwargs": kwargs}, f"compensating action {self.name!r}")

    def call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """The function and the full arguments, with a partial's bound ones first."""
        handler: Any = self.handler
        args: tuple[Any, ...] = tuple(self.args)
        kwargs: dict[str, Any] = dict(self.kwargs)
        while isinstance(handler, functools.partial):
            args = (*handler.args, *args)
            kwargs = {**handler.keywords, **kwargs}
            handler = handler.func
        return handler, args, kwargs


def add_compensating_action(action: CompensatingAction) -> CompensationRecord:
    """Register ``action`` in the current flow run's undo log (like ``compensate``)."""
    if not isinstance(action, CompensatingAction):
        raise InvalidArgumentError(
            "add_compensating_action takes a CompensatingAction",
            value=action,
            hint="Wrap it: add_compensating_action(CompensatingAction(name=..., handler=...))",
            docs="compensation.md",
        )
    handler, args, kwargs = action.call()
    return register_compensation(
        handler,
        args,
        kwargs,
        name=action.name,
        idempotency_key=action.idempotency_key,
        max_attempts=action.max_attempts,
        retry_delay_s=action.retry_delay_s,
    )


def execute_compensating_actions(flow_run_id: str | None = None) -> CompensationReport:
    """Run the outstanding compensations of a flow run (default: the current one) now.

    Newest first, each at most once to success; what already ran is skipped.
    """
    run = flow_run_id or current_correlation().flow_run_id
    if run is None:
        raise InvalidArgumentError(
            "execute_compensating_actions() needs a flow run: call it inside one or pass "
            "flow_run_id",
            value=None,
            docs="compensation.md",
        )
    return run_compensations(run)
