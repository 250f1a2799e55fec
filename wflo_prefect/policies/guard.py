"""The ``policies=`` keyword: evaluate policies before a governed run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, ClassVar, Literal

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import NOTHING_TO_DO, GovernedCall, Guard, register_guard
from wflo_prefect.policies.context import active_policies, expand_policies, use_policies
from wflo_prefect.policies.engine import enforce_policies
from wflo_prefect.policies.policy import Policy
from wflo_prefect.policies.watchdog import watch_run, watch_run_async

__all__ = ["PolicyGuard"]


class PolicyGuard(Guard):
    """Evaluates the run's policies (and the global ones) before the function runs."""

    keyword: ClassVar[str] = "policies"
    order: ClassVar[int] = 10
    # Process-wide policies (set_global_policies) govern every governed run.
    always: ClassVar[bool] = True

    def validate(
        self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]
    ) -> tuple[Policy, ...]:
        if value is None:
            return ()
        policies = expand_policies(value)
        for policy in policies:
            if not isinstance(policy, Policy):
                raise InvalidArgumentError(
                    f"policies= on {fn.__qualname__} takes Policy objects",
                    value=policy,
                    hint="Build one with Policy(condition=..., actions=[...]), or pass a "
                    "WfloPolicySet",
                    docs="policies.md",
                )
        return policies

    def around(self, call: GovernedCall, value: tuple[Policy, ...]) -> AbstractContextManager[None]:
        if _nothing_to_do(call, value):
            return NOTHING_TO_DO
        return _scope(call, value)

    def around_async(
        self, call: GovernedCall, value: tuple[Policy, ...]
    ) -> AbstractAsyncContextManager[None]:
        if _nothing_to_do(call, value):
            return NOTHING_TO_DO
        return _scope_async(call, value)


def _nothing_to_do(call: GovernedCall, value: tuple[Policy, ...]) -> bool:
    """A task with no policies of its own, and none active evaluated at ``run``: the
    common case, left without a scope (a flow always has one: it watches its run)."""
    return not value and call.kind == "task" and not _evaluated_at_run(active_policies())


@contextmanager
def _scope(call: GovernedCall, value: tuple[Policy, ...]) -> Iterator[None]:
    with use_policies(value):
        params = _enforce(call)
        if call.kind != "flow":
            yield
            return
        # Time-based policies are watched while the flow runs, not only at task starts.
        with watch_run(active_policies(), name=call.name, params=params):
            yield


@asynccontextmanager
async def _scope_async(call: GovernedCall, value: tuple[Policy, ...]) -> AsyncIterator[None]:
    with use_policies(value):
        params = _enforce(call)
        if call.kind != "flow":
            yield
            return
        async with watch_run_async(active_policies(), name=call.name, params=params):
            yield


def _evaluated_at_run(policies: tuple[Policy, ...]) -> bool:
    return any("run" in p.on for p in policies)


def _enforce(call: GovernedCall) -> dict[str, Any]:
    """Evaluate the active policies at ``run``; return the call's arguments.

    With no policy evaluated at ``run`` (the common case) the arguments are not bound
    and ``{}`` is returned: nothing reads them.
    """
    if not _evaluated_at_run(active_policies()):
        return {}
    params = call.bound_arguments()
    enforce_policies("run", operation=call.operation, kind=call.kind, name=call.name, params=params)
    return params


register_guard(PolicyGuard())
