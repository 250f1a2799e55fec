"""``ApprovalPolicy``: everything a gate needs to know, validated up front."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.approvals.principals import Approvers
from wflo_prefect.errors import InvalidArgumentError

__all__ = ["ApprovalPolicy", "EscalationTier", "OnTimeout", "approval_seconds"]

OnTimeout = Literal["reject", "approve", "escalate", "fail"]


def approval_seconds(value: float | timedelta | None) -> float | None:
    """Seconds of a timeout given as a number or a ``timedelta``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float | str):
        seconds = float(value)
    else:  # a ValueError, so pydantic reports it against the field
        raise ValueError(f"a timeout is seconds or a timedelta, not {type(value).__name__}")
    if seconds <= 0:
        raise ValueError(f"a timeout must be positive, got {value!r}")
    return seconds


class EscalationTier(ValidatedModel, BaseModel):
    """Who is added, and notified, when the previous tier's deadline passes."""

    wflo_docs: ClassVar[str | None] = "approvals.md"

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    approvers: list[str] = Field(description="Users or groups added at this tier.")
    timeout: float = Field(description="Seconds this tier waits before the next step.")
    notify: list[Any] = Field(default_factory=list, description="Channel blocks to notify.")

    @field_validator("timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        seconds = approval_seconds(value)
        assert seconds is not None
        return seconds


class ApprovalPolicy(ValidatedModel, BaseModel):
    """A human approval a governed task or flow needs before it runs.

    The same fields as the keywords of :func:`~wflo_prefect.require_approval`;
    ``action`` defaults to the task's ``operation`` or name, and the details are
    the call's bound arguments.
    """

    wflo_docs: ClassVar[str | None] = "approvals.md"

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    action: str | None = None
    approvers: list[str] = Field(default_factory=list)
    principals: Approvers | str | None = None
    quorum: int = Field(default=1, ge=1)
    timeout: float | None = 3600.0
    on_timeout: OnTimeout = "reject"
    escalation: list[EscalationTier] = Field(default_factory=list)
    notify: list[Any] = Field(default_factory=list)
    expires_after: float | None = None
    allow_self_approval: bool = False
    requested_by: str | None = None
    suspend: bool = False

    @field_validator("timeout", "expires_after", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float | None:
        return approval_seconds(value)

    @model_validator(mode="after")
    def _coherent(self) -> ApprovalPolicy:
        if self.on_timeout == "escalate" and not self.escalation:
            raise ValueError("on_timeout='escalate' needs at least one `escalation=` tier")
        if self.escalation and self.timeout is None:
            raise ValueError("`escalation=` tiers start when `timeout=` passes; set `timeout=`")
        if self.principals is None:
            _refuse_unverifiable(self)
        return self


def _refuse_unverifiable(policy: ApprovalPolicy) -> None:
    # Without a directory nobody can prove a name: anyone could answer as "bob" and
    # then as "carol". So names, and quorums of several people, need principals.
    named = list(
        dict.fromkeys([*policy.approvers, *(a for t in policy.escalation for a in t.approvers)])
    )
    if named:
        raise InvalidArgumentError(
            "Approvers named without an Approvers directory cannot be verified: anyone "
            "could answer under their names",
            value=named,
            hint="Pass principals=Approvers(users=[Principal(name=..., email=..., slack_id=..., "
            "api_key_hashes=[hash_api_key(...)]), ...]) or the name of a saved Approvers "
            "block, so each approver proves who they are; or drop approvers= for an open "
            "gate that anyone may answer (quorum 1)",
            docs="approvals.md",
        )
    if policy.quorum > 1:
        raise InvalidArgumentError(
            f"quorum={policy.quorum} needs distinct, verified people, and an open gate "
            "(no principals) cannot tell one person from another",
            value=policy.quorum,
            hint="Name the approvers and pass principals= (an Approvers block), or use quorum=1",
            docs="approvals.md",
        )
