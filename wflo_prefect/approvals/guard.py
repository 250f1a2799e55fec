"""``approval=`` on governed flows and tasks: a gate before the function runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, Literal

from wflo_prefect.approvals.gate import run_gate
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import GovernedCall, Guard

__all__ = ["ApprovalGuard"]


class ApprovalGuard(Guard):
    """Pauses a governed run for approval of its call, bound arguments as details."""

    keyword = "approval"
    # After policies (which may add gates) and before budgets are spent.
    order = 30

    def validate(
        self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]
    ) -> ApprovalPolicy:
        """Accept an ``ApprovalPolicy`` (``True`` means the default policy)."""
        if value is True:
            return ApprovalPolicy()
        if not isinstance(value, ApprovalPolicy):
            raise InvalidArgumentError(
                f"`approval=` on {fn.__qualname__} takes an ApprovalPolicy",
                value=value,
                hint="e.g. approval=ApprovalPolicy(approvers=['ops'], timeout=3600)",
                docs="approvals.md",
            )
        return value

    def around(self, call: GovernedCall, value: Any) -> AbstractContextManager[None]:
        """Run the gate with the call's bound arguments, then let the function run."""
        policy: ApprovalPolicy = value

        @contextmanager
        def gate() -> Iterator[None]:
            action = policy.action or call.operation or f"run {call.kind} {call.name}"
            details = {"function": call.name, **call.bound_arguments()}
            run_gate(action, details, policy)
            yield

        return gate()

    def around_async(self, call: GovernedCall, value: Any) -> AbstractAsyncContextManager[None]:
        """The gate awaited: the event loop runs on while people decide."""
        policy: ApprovalPolicy = value

        @asynccontextmanager
        async def gate() -> AsyncIterator[None]:
            from wflo_prefect.approvals.async_gate import arun_gate

            action = policy.action or call.operation or f"run {call.kind} {call.name}"
            details = {"function": call.name, **call.bound_arguments()}
            await arun_gate(action, details, policy)
            yield

        return gate()
