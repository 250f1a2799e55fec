"""Errors of the policy engine."""

from __future__ import annotations

from typing import Any, ClassVar

from wflo_prefect.errors import InvalidArgumentError, WfloRuntimeError

__all__ = ["PolicyConditionError", "PolicyViolation"]


class PolicyConditionError(InvalidArgumentError):
    """A policy condition that cannot be right: bad syntax, an unknown name, function
    or field, or a type error. Raised when the ``Policy`` is built, never mid-run.

    ``position`` is the 1-based column in the condition, ``text`` the part at fault.
    """

    def __init__(self, condition: str, problem: str, *, position: int, text: str) -> None:
        self.condition = condition
        self.problem = problem
        self.position = position
        self.text = text
        super().__init__(
            f"The policy condition {condition!r} is wrong at column {position} "
            f"({text!r}): {problem}",
            hint="Fix the condition; the names, functions and types it can use are listed "
            "in the docs",
            docs="policies.md",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_condition_error,
            (self.condition, self.problem, self.position, self.text),
        )


def _rebuild_condition_error(
    condition: str, problem: str, position: int, text: str
) -> PolicyConditionError:
    return PolicyConditionError(condition, problem, position=position, text=text)


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
