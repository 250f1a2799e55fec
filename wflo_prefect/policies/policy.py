"""``Policy``: a CEL condition and the actions to take when it holds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.policies.actions import Action
from wflo_prefect.policies.condition import CompiledCondition, compile_condition
from wflo_prefect.policies.variables import names_at

__all__ = ["Point", "Policy"]

#: Where policies are evaluated: before a governed run, before an LLM call is
#: sent, before a sandbox starts.
Point = Literal["run", "spend", "sandbox"]


class Policy(BaseModel):
    """A rule: when ``condition`` holds at one of the ``on`` points, take ``actions``.

    The condition is compiled when the policy is built, so a typo or an unknown
    name fails at import time with the names that are allowed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    condition: str = Field(
        description="CEL expression, e.g. \"cost > 100 OR operation == 'delete'\"."
    )
    actions: tuple[Action, ...] = Field(description="What to do when the condition holds.")
    name: str = Field(default="", description="Name in the audit log; default: the condition.")
    on: tuple[Point, ...] = Field(default=("run",), description="Where it is evaluated.")
    stop: bool = Field(
        default=False,
        description="When it matches, evaluate no later policy (first-match routing).",
    )
    description: str = Field(default="", description="What the rule is for.")

    _compiled: CompiledCondition = PrivateAttr()

    @field_validator("actions", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, BaseModel) else value

    @field_validator("on", mode="before")
    @classmethod
    def _point_or_points(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Compiled after pydantic's validation so the InvalidArgumentError naming the
        # condition reaches the caller as itself, not wrapped in a ValidationError.
        self._compile()

    def _compile(self) -> CompiledCondition:
        if not self.on:
            raise InvalidArgumentError(
                "A policy must be evaluated somewhere", value=self.on, hint="Use on=('run',)"
            )
        allowed = set.intersection(*(names_at(p) for p in self.on))
        self._compiled = compile_condition(self.condition, allowed)
        if not self.name:
            object.__setattr__(self, "name", self.condition)
        return self._compiled

    @property
    def compiled(self) -> CompiledCondition:
        """The condition's CEL program (compiled when the policy was built)."""
        compiled: CompiledCondition | None = getattr(self, "_compiled", None)
        return compiled if compiled is not None else self._compile()

    def matches(self, context: dict[str, Any]) -> bool:
        """True when the condition holds for ``context``."""
        return self.compiled.evaluate(context)
