"""Errors of the policy engine."""

from __future__ import annotations

from typing import Any, ClassVar

from wflo_prefect.errors import WfloRuntimeError

__all__ = ["PolicyViolation"]


class PolicyViolation(WfloRuntimeError):
    """A policy with a ``Halt`` action matched: the governed code does not run.

    The Prefect run ends Failed with the state name ``PolicyViolation``.
    """

    prefect_state_name: ClassVar[str] = "PolicyViolation"

    def __init__(self, policy: str, reason: str, context: dict[str, Any]) -> None:
        self.policy = policy
        self.reason = reason
        self.context = context
        super().__init__(
            f"Policy {policy!r} halted the run: {reason}",
            hint="Change the input or the policy; the decision is in the audit log",
            docs="policies.md",
        )
