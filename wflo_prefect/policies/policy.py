"""``Policy``: a CEL condition and the actions to take when it holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.policies.actions import Action, AuditLog, RequireApproval
from wflo_prefect.policies.condition import CompiledCondition, compile_condition, used_names
from wflo_prefect.policies.variables import POINTS, TYPES, names_at, types_at

__all__ = ["ApprovalRule", "Condition", "Point", "Policy"]

#: Where policies are evaluated: before a governed run, before an LLM call is
#: sent, before a sandbox starts.
Point = Literal["run", "spend", "sandbox"]


class Condition:
    """A condition on its own (the seeds' ``Condition("estimated_cost > 100")``).

    Checked when it is built, against every name some point provides; the
    ``Policy`` it is given to checks it again against its own points.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        used_names(text, TYPES)
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _infer_points(condition: str) -> tuple[Point, ...]:
    """``run`` when the condition's names exist there, else every point where they do."""
    names = used_names(condition, TYPES)
    where = tuple(p for p in POINTS if names <= names_at(p))
    if "run" in where:
        return ("run",)
    if not where:
        raise InvalidArgumentError(
            f"The policy condition {condition!r} uses names no single point provides",
            value=sorted(names),
            hint="Split it into one policy per point (on='run', 'spend' or 'sandbox')",
            docs="policies.md",
        )
    return where  # type: ignore[return-value]  # a subset of POINTS


class Policy(ValidatedModel, BaseModel):
    """A rule: when ``condition`` holds at one of the ``on`` points, take ``actions``.

    The condition is type-checked and compiled when the policy is built, so a
    typo, an unknown name, function or field, or a type error fails at import
    time with its position, never in the middle of a run.
    """

    wflo_docs: ClassVar[str | None] = "policies.md"

    model_config = ConfigDict(frozen=True, extra="forbid")

    condition: str = Field(
        description="CEL expression, e.g. \"cost > 100 OR operation == 'delete'\".",
        examples=["cost > 100 OR operation == 'delete'", "*"],
    )
    actions: tuple[Action, ...] = Field(description="What to do when the condition holds.")
    name: str = Field(default="", description="Name in the audit log; default: the condition.")
    on: tuple[Point, ...] = Field(
        default=(),
        description="Where it is evaluated. Default: 'run', or, when the condition uses "
        "names only other points provide (model, sandbox, workflow), those points.",
    )
    stop: bool = Field(
        default=False,
        description="When it matches, evaluate no later policy (first-match routing).",
    )
    description: str = Field(default="", description="What the rule is for.")

    _compiled: CompiledCondition = PrivateAttr()

    @field_validator("condition", mode="before")
    @classmethod
    def _condition_text(cls, value: Any) -> Any:
        return value.text if isinstance(value, Condition) else value

    @field_validator("actions", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, BaseModel) else value

    @field_validator("on", mode="before")
    @classmethod
    def _point_or_points(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def model_post_init(self, context: Any, /) -> None:
        # After validation, from __init__ and from model_validate (files, blocks) alike.
        self._compile()

    def _compile(self) -> CompiledCondition:
        if not self.on:
            object.__setattr__(self, "on", _infer_points(self.condition))
        self._compiled = compile_condition(self.condition, types_at(self.on))
        if not self.name:
            object.__setattr__(self, "name", self.condition)
        return self._compiled

    @property
    def compiled(self) -> CompiledCondition:
        """The condition's CEL program (compiled when the policy was built)."""
        # Read from pydantic's private dict directly: attribute access to a private
        # attribute goes through BaseModel.__getattr__, several times slower.
        private = self.__pydantic_private__
        compiled: CompiledCondition | None = private.get("_compiled") if private else None
        return compiled if compiled is not None else self._compile()

    def matches(self, context: dict[str, Any]) -> bool:
        """True when the condition holds for ``context``."""
        return self.compiled.evaluate(context)


def ApprovalRule(
    condition: str | Condition,
    require_approval: bool = True,
    *,
    approvers: Sequence[str] = (),
    audit_log: bool = False,
    name: str = "",
    quorum: int = 1,
    timeout: float = 3600,
    on: Point | tuple[Point, ...] = (),
) -> Policy:
    """A first-match routing rule (the seeds' ``ApprovalRule``), as a ``Policy``.

    When ``condition`` holds it asks ``approvers`` (if ``require_approval``), writes
    an audit entry (if ``audit_log``), and stops: later rules are not evaluated. A
    list of them, ending with ``ApprovalRule(condition="*", require_approval=False)``,
    routes each call to exactly one rule.
    """
    actions: list[Any] = []
    if audit_log:
        actions.append(AuditLog(message="approval rule matched"))
    if require_approval:
        actions.append(RequireApproval(approvers=tuple(approvers), quorum=quorum, timeout=timeout))
    elif approvers:
        raise InvalidArgumentError(
            "approvers= without require_approval=True asks nobody",
            value=list(approvers),
            hint="Set require_approval=True, or drop approvers=",
            docs="policies.md",
        )
    return Policy(condition=condition, actions=actions, name=name, on=on, stop=True)
