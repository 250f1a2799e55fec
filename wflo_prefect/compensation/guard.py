"""``compensate=`` and ``snapshot=`` on governed flows and tasks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from wflo_prefect.compensation.handlers import handler_ref
from wflo_prefect.compensation.register import compensate
from wflo_prefect.compensation.snapshots import create_snapshot, restore_snapshot, snapshot
from wflo_prefect.compensation.state import StateSnapshot, using_state
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import GovernedCall, Guard, register_guard

__all__ = ["CompensateGuard", "RollbackRequest", "SnapshotGuard", "with_rollback"]


class CompensateGuard(Guard):
    """Registers the given undo function once the governed function has succeeded.

    The undo function receives, by name, those of the governed function's
    arguments it declares, and ``result`` (what the function returned) if it
    declares that.
    """

    keyword: ClassVar[str] = "compensate"
    order: ClassVar[int] = 40

    def validate(
        self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]
    ) -> Callable[..., Any]:
        handler_ref(value)
        offered = set(inspect.signature(fn).parameters) | {"result", "idempotency_key"}
        params = inspect.signature(getattr(value, "fn", value)).parameters.values()
        missing = [
            p.name
            for p in params
            if p.name not in offered
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if missing:
            raise InvalidArgumentError(
                f"compensate={getattr(value, '__qualname__', value)} needs {missing}, which "
                f"{fn.__qualname__} does not have",
                value=missing,
                hint="Name its parameters after the governed function's, or `result`",
                docs="compensation.md",
            )
        handler: Callable[..., Any] = value
        return handler

    def around(self, call: GovernedCall, value: Callable[..., Any]) -> AbstractContextManager[None]:
        @contextmanager
        def register_on_success() -> Iterator[None]:
            yield
            available = {**call.bound_arguments(), "result": call.extras.get("result")}
            wanted = inspect.signature(getattr(value, "fn", value)).parameters
            kwargs = {k: v for k, v in available.items() if k in wanted}
            key = f"{call.correlation.task_run_id or call.correlation.flow_run_id}:{call.name}"
            record = compensate(value, name=f"undo {call.name}", idempotency_key=key, **kwargs)
            _remember_in_transaction(record.id)

        return register_on_success()


def _remember_in_transaction(compensation_id: str) -> None:
    """Let Prefect's transaction rollback find this compensation (see rollback_hook)."""
    from prefect.transactions import get_transaction

    transaction = get_transaction()
    if transaction is not None:
        transaction.set("wflo_compensation_id", compensation_id)


def rollback_hook(transaction: Any) -> None:
    """Prefect ``on_rollback`` hook: run this task's compensation now, exactly once."""
    from wflo_prefect.compensation.runner import run_compensation
    from wflo_prefect.ledger import get_ledger

    compensation_id = transaction.get("wflo_compensation_id", None)
    if compensation_id is None:
        return
    record = get_ledger().compensations.get(compensation_id)
    if record is not None:
        run_compensation(record)


@dataclass(frozen=True)
class _SnapshotPlan:
    state: StateSnapshot | None  # None: the call's arguments are the snapshot
    rollback: bool


class SnapshotGuard(Guard):
    """``snapshot=``: store state before the function runs; ``rollback_enabled=``: restore it
    on failure.

    ``snapshot=True`` stores the call's arguments. ``snapshot=StateSnapshot(...)``
    captures through its ``capture``, and with ``rollback_enabled=True`` a failure
    restores the captured state through its ``restore`` before the error goes on.
    """

    keyword: ClassVar[str] = "snapshot"
    order: ClassVar[int] = 35

    def validate(
        self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]
    ) -> _SnapshotPlan:
        rollback = isinstance(value, RollbackRequest)
        given = value.snapshot if isinstance(value, RollbackRequest) else value
        if rollback and not (isinstance(given, StateSnapshot) and given.restore is not None):
            raise InvalidArgumentError(
                f"rollback_enabled=True on {fn.__qualname__} needs a way to restore: "
                "snapshot=StateSnapshot(capture=..., restore=...)",
                value=given,
                hint="Pass snapshot=StateSnapshot(capture=read_state, restore=write_state)",
                docs="compensation.md",
            )
        if isinstance(given, StateSnapshot):
            given.check_against(fn)
            return _SnapshotPlan(given, rollback)
        if given is not True:
            raise InvalidArgumentError(
                f"snapshot= on {fn.__qualname__} takes True or a StateSnapshot",
                value=given,
                docs="compensation.md",
            )
        return _SnapshotPlan(None, False)

    def around(self, call: GovernedCall, value: _SnapshotPlan) -> AbstractContextManager[None]:
        @contextmanager
        def take() -> Iterator[None]:
            arguments = call.bound_arguments()
            default_name = f"{call.kind}:{call.name}"
            if value.state is None:
                snapshot(default_name, {k: _plain(v) for k, v in arguments.items()})
                yield
                return
            with using_state(value.state, arguments):
                taken = create_snapshot(value.state.name or default_name)
                try:
                    yield
                except BaseException:
                    if value.rollback:
                        restore_snapshot(snapshot_id=taken.id)
                    raise

        return take()


@dataclass(frozen=True)
class RollbackRequest:
    """``snapshot=`` as the decorators pass it when ``rollback_enabled=True``."""

    snapshot: Any


def with_rollback(snapshot_value: Any, rollback_enabled: bool) -> Any:
    """The ``snapshot`` option of a decorator, given its ``rollback_enabled=``."""
    if not rollback_enabled:
        return snapshot_value
    return RollbackRequest(snapshot_value)


def _plain(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


register_guard(CompensateGuard())
register_guard(SnapshotGuard())
