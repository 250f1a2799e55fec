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
from wflo_prefect._prefect_compat import set_flow_entrypoint
from wflo_prefect._run_end import flow_end_hook, records_own_completion, task_end_hook
from wflo_prefect._runtime import wrap_function
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import Governance, GovernanceKeywords, governance

__all__ = ["governed_flow", "governed_task"]

P = ParamSpec("P")
R = TypeVar("R")

_FLOW_END_HOOKS = ("on_completion", "on_failure", "on_crashed", "on_cancellation")
_TASK_END_HOOKS = ("on_completion", "on_failure")
# A governed task function's wrapper records its completion itself (see _run_end).
_TASK_FAILURE_HOOKS = ("on_failure",)


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


def _govern(
    fn: object,
    kind: Literal["flow", "task"],
    keywords: GovernanceKeywords,
    operation: object,
    prefect_kwargs: dict[str, Any],
) -> tuple[Governance, Callable[..., Any], dict[str, Any]]:
    """What both decorators do: validate, wrap the function, add the end hooks.

    Returns the governance, the wrapped function and Prefect's keywords to build the
    flow or task with.
    """
    if not callable(fn):
        raise InvalidArgumentError(
            f"@governed_{kind} decorates a function", value=fn, hint="Put it above a `def`"
        )
    rules = governance(fn, kind, keywords, name=prefect_kwargs.get("name"), operation=operation)
    wrapped = wrap_function(
        fn, kind=kind, name=rules.name, operation=rules.operation, guards=rules.guards
    )
    kwargs = dict(prefect_kwargs)
    if kind == "flow":
        _merge_hooks(kwargs, _FLOW_END_HOOKS, flow_end_hook)
    else:
        hooks = _TASK_FAILURE_HOOKS if records_own_completion(fn) else _TASK_END_HOOKS
        _merge_hooks(kwargs, hooks, task_end_hook)
    return rules, wrapped, kwargs


def _build_flow(
    fn: Callable[P, R],
    keywords: GovernanceKeywords,
    operation: object,
    prefect_kwargs: dict[str, Any],
) -> Flow[P, R]:
    _rules, wrapped, kwargs = _govern(fn, "flow", keywords, operation, prefect_kwargs)
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
            set_flow_entrypoint(result, f"{inspect.getfile(fn)}:{fn.__qualname__}")
    result.__dict__["_wflo_governed"] = True
    return result


def _build_task(
    fn: Callable[P, R],
    keywords: GovernanceKeywords,
    operation: object,
    prefect_kwargs: dict[str, Any],
) -> Task[P, R]:
    rules, wrapped, kwargs = _govern(fn, "task", keywords, operation, prefect_kwargs)
    result: Task[P, R] = prefect_task(**kwargs)(wrapped)
    if rules.compensated:
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
    keywords = GovernanceKeywords(
        budget=budget,
        policies=tuple(policies),
        approval=approval,
        compensate=compensate,
        sandbox=sandbox,
        snapshot=_snapshot_option(snapshot, rollback_enabled),
    )
    if __fn is not None:
        return _build_flow(__fn, keywords, operation, prefect_kwargs)

    def decorator(fn: Callable[P, R]) -> Flow[P, R]:
        return _build_flow(fn, keywords, operation, prefect_kwargs)

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
    keywords = GovernanceKeywords(
        budget=budget,
        policies=tuple(policies),
        approval=approval,
        compensate=compensate,
        sandbox=sandbox,
        snapshot=_snapshot_option(snapshot, rollback_enabled),
    )
    if __fn is not None:
        return _build_task(__fn, keywords, operation, prefect_kwargs)

    def decorator(fn: Callable[P, R]) -> Task[P, R]:
        return _build_task(fn, keywords, operation, prefect_kwargs)

    return decorator
