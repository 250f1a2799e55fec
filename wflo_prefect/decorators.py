"""``governed_flow`` and ``governed_task``: Prefect's decorators, plus governance.

Both return real :class:`prefect.Flow` / :class:`prefect.Task` objects, so
``.serve()``, ``.deploy()``, ``.submit()``, ``.map()``, retries, caching and every
Prefect keyword keep working. On top they take wflo's keywords (``budget=``,
``policies=``, ``approval=``, ``compensate=``, ``sandbox=``, ``snapshot=``,
``operation=``), validated when the decorator is applied, and record each run's
start and end in the ledger's audit log with its correlation ids.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, overload

from prefect import Flow, Task
from prefect import flow as prefect_flow
from prefect import task as prefect_task
from prefect.utilities.hashing import file_hash

# Each capability registers the guard for its keyword when imported; the governed
# decorators answer to every keyword (and apply the always-on guards), so load them all.
import wflo_prefect.approvals
import wflo_prefect.compensation
import wflo_prefect.costs
import wflo_prefect.policies
import wflo_prefect.sandbox  # noqa: F401
from wflo_prefect._runtime import flow_end_hook, task_end_hook, wrap_function
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import resolve_guards

__all__ = ["governed_flow", "governed_task"]

P = ParamSpec("P")
R = TypeVar("R")

_FLOW_END_HOOKS = ("on_completion", "on_failure", "on_crashed", "on_cancellation")
_TASK_END_HOOKS = ("on_completion", "on_failure")


def _check_operation(operation: object, fn: Callable[..., Any]) -> str | None:
    if operation is None:
        return None
    if not isinstance(operation, str) or not operation.strip():
        raise InvalidArgumentError(
            f"`operation=` on {fn.__qualname__} must be a non-empty string naming what the "
            "code does (e.g. 'delete', 'deploy')",
            value=operation,
        )
    return operation


def _check_callable(fn: object, decorator: str) -> None:
    if not callable(fn):
        raise InvalidArgumentError(
            f"@{decorator} decorates a function", value=fn, hint="Put it above a `def`"
        )


def _merge_hooks(kwargs: dict[str, Any], names: Sequence[str], hook: Callable[..., None]) -> None:
    for name in names:
        existing = kwargs.get(name) or []
        if callable(existing):
            existing = [existing]
        kwargs[name] = [*existing, hook]


def _snapshot_option(snapshot: Any, rollback_enabled: bool) -> Any:
    if not rollback_enabled:
        return snapshot
    from wflo_prefect.compensation.guard import with_rollback

    return with_rollback(snapshot, rollback_enabled)


def _governance(
    fn: Callable[..., Any],
    kind: Literal["flow", "task"],
    prefect_kwargs: dict[str, Any],
    options: dict[str, Any],
    operation: object,
) -> Callable[..., Any]:
    op = _check_operation(operation, fn)
    guards = resolve_guards(options, kind=kind, fn=fn)
    name = prefect_kwargs.get("name") or fn.__name__
    return wrap_function(fn, kind=kind, name=name, operation=op, guards=guards)


def _build_flow(
    fn: Callable[P, R], prefect_kwargs: dict[str, Any], options: dict[str, Any], operation: object
) -> Flow[P, R]:
    _check_callable(fn, "governed_flow")
    wrapped = _governance(fn, "flow", prefect_kwargs, options, operation)
    kwargs = dict(prefect_kwargs)
    _merge_hooks(kwargs, _FLOW_END_HOOKS, flow_end_hook)
    if kwargs.get("version") is None:
        # Prefect hashes the function's file for the version; hash the user's file,
        # not this wrapper's.
        try:
            source = inspect.getsourcefile(fn)
            if source:
                kwargs["version"] = file_hash(source)
        except (OSError, TypeError):
            pass
    result: Flow[P, R] = prefect_flow(**kwargs)(wrapped)
    if fn.__module__ == "__main__":
        with contextlib.suppress(TypeError):
            result._entrypoint = f"{inspect.getfile(fn)}:{fn.__qualname__}"
    result.__dict__["_wflo_governed"] = True
    return result


def _build_task(
    fn: Callable[P, R], prefect_kwargs: dict[str, Any], options: dict[str, Any], operation: object
) -> Task[P, R]:
    _check_callable(fn, "governed_task")
    wrapped = _governance(fn, "task", prefect_kwargs, options, operation)
    kwargs = dict(prefect_kwargs)
    _merge_hooks(kwargs, _TASK_END_HOOKS, task_end_hook)
    result: Task[P, R] = prefect_task(**kwargs)(wrapped)
    if options.get("compensate") is not None:
        from wflo_prefect.compensation.guard import rollback_hook

        # Inside a Prefect transaction, a rollback runs the task's compensation at once.
        result.on_rollback(rollback_hook)
    result.__dict__["_wflo_governed"] = True
    return result


@overload
def governed_flow(__fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def governed_flow(
    *,
    budget: Any = None,
    policies: Sequence[Any] = (),
    approval: Any = None,
    compensate: Any = None,
    sandbox: Any = None,
    snapshot: Any = False,
    rollback_enabled: bool = False,
    operation: str | None = None,
    **prefect_kwargs: Any,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def governed_flow(
    __fn: Callable[P, R] | None = None,
    /,
    *,
    budget: Any = None,
    policies: Sequence[Any] = (),
    approval: Any = None,
    compensate: Any = None,
    sandbox: Any = None,
    snapshot: Any = False,
    rollback_enabled: bool = False,
    operation: str | None = None,
    **prefect_kwargs: Any,
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Like :func:`prefect.flow`, plus wflo's governance keywords.

    Args:
        budget: a ``Budget`` (or several) every LLM call in the run is held to.
        policies: ``Policy`` objects evaluated before the run starts.
        approval: an ``ApprovalPolicy``: a human must approve before the run starts.
        compensate: a compensating action registered when the run succeeds.
        sandbox: a ``SandboxConfig``: run the function in a locked-down container.
        snapshot: ``True``: store the run's parameters before it starts; a
            ``StateSnapshot(capture=..., restore=...)``: capture the state it changes.
        rollback_enabled: on failure, restore the ``StateSnapshot`` taken before it.
        operation: what the flow does ("delete", "deploy" ...), for policies and audit.
        **prefect_kwargs: every keyword :func:`prefect.flow` takes.
    """
    options = {
        "budget": budget,
        "policies": tuple(policies),
        "approval": approval,
        "compensate": compensate,
        "sandbox": sandbox,
        "snapshot": _snapshot_option(snapshot, rollback_enabled),
    }
    if __fn is not None:
        return _build_flow(__fn, prefect_kwargs, options, operation)

    def decorator(fn: Callable[P, R]) -> Flow[P, R]:
        return _build_flow(fn, prefect_kwargs, options, operation)

    return decorator


@overload
def governed_task(__fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def governed_task(
    *,
    budget: Any = None,
    policies: Sequence[Any] = (),
    approval: Any = None,
    compensate: Any = None,
    sandbox: Any = None,
    snapshot: Any = False,
    rollback_enabled: bool = False,
    operation: str | None = None,
    **prefect_kwargs: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def governed_task(
    __fn: Callable[P, R] | None = None,
    /,
    *,
    budget: Any = None,
    policies: Sequence[Any] = (),
    approval: Any = None,
    compensate: Any = None,
    sandbox: Any = None,
    snapshot: Any = False,
    rollback_enabled: bool = False,
    operation: str | None = None,
    **prefect_kwargs: Any,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Like :func:`prefect.task`, plus wflo's governance keywords.

    The keywords are those of :func:`governed_flow`, applied to each task run.
    """
    options = {
        "budget": budget,
        "policies": tuple(policies),
        "approval": approval,
        "compensate": compensate,
        "sandbox": sandbox,
        "snapshot": _snapshot_option(snapshot, rollback_enabled),
    }
    if __fn is not None:
        return _build_task(__fn, prefect_kwargs, options, operation)

    def decorator(fn: Callable[P, R]) -> Task[P, R]:
        return _build_task(fn, prefect_kwargs, options, operation)

    return decorator
