"""Typed approval records: the frozen policy snapshot, the request, votes, the waiter.

A request's :class:`RequestPolicy` is what the gate asked for (principals, tiers,
timeout behaviour, channels...) and never changes after the request is made.
Everything that happens later has its own typed field, filled from its own column
or table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Admit",
    "ApprovalRequestRecord",
    "ApprovalVoteRecord",
    "ApprovalWaiterRecord",
    "PrincipalSnapshot",
    "RequestPolicy",
    "Tally",
    "TierSnapshot",
    "VoteOutcome",
    "WaitMode",
]

PENDING = "pending"

#: How a request's gate waits: ``pause`` (it paused the run, a decision resumes it),
#: ``suspend`` (the run is suspended, no process held), or ``await`` (a later gate of
#: an async run that waits on the ledger while another gate has the run paused: a
#: decision only wakes it, never resumes the run).
WaitMode = Literal["pause", "suspend", "await"]


class PrincipalSnapshot(BaseModel):
    """How to reach and verify one approver, as the directory said when asked."""

    model_config = ConfigDict(frozen=True)

    email: str | None = None
    slack_id: str | None = None
    api_key_hashes: list[str] = Field(default_factory=list)

    def contact(self) -> dict[str, Any]:
        """The plain mapping channels read (``email``, ``slack_id``, ``api_key_hashes``)."""
        return self.model_dump()


class TierSnapshot(BaseModel):
    """One escalation tier: who is added, and how long they have."""

    model_config = ConfigDict(frozen=True)

    approvers: list[str] = Field(default_factory=list)
    timeout: float


class RequestPolicy(BaseModel):
    """The gate's policy as stored with the request, once, when it is made."""

    model_config = ConfigDict(frozen=True)

    #: Proven approvers by name (empty: an open gate, names not verified).
    principals: dict[str, PrincipalSnapshot] = Field(default_factory=dict)
    allow_self_approval: bool = False
    on_timeout: str = "reject"
    tiers: list[TierSnapshot] = Field(default_factory=list)
    #: Salt the Prefect UI form's one-time codes are derived from.
    code_salt: str = ""
    #: The requesting run's correlation ids (for audit entries written elsewhere).
    correlation: dict[str, Any] = Field(default_factory=dict)
    mode: WaitMode = "pause"
    #: ``slug/name`` of each tier's channels saved as blocks (None for inline ones).
    channels: list[list[str | None]] = Field(default_factory=list)

    @property
    def proven(self) -> bool:
        """Whether approvers must prove who they are (a principals directory was given)."""
        return bool(self.principals)


class ApprovalWaiterRecord(BaseModel):
    """The process waiting at a gate, as it last reported."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    request_id: str
    wake: str | None = None
    host: str
    pid: int
    token: str
    heartbeat_at: datetime


class ApprovalRequestRecord(BaseModel):
    """An approval request as stored."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    flow_run_id: str | None = None
    task_run_id: str | None = None
    action: str
    details: dict[str, Any] = Field(default_factory=dict)
    digest: str
    approvers: list[Any] = Field(default_factory=list)
    quorum: int = 1
    requested_by: str | None = None
    status: str = PENDING
    tier: int = 0
    keyset: str | None = None
    created_at: datetime
    deadline_at: datetime | None = None
    expires_at: datetime | None = None
    decided_at: datetime | None = None
    policy: RequestPolicy = Field(default_factory=RequestPolicy)
    timeout_outcome: str | None = None
    suspend_attempt: int = 0
    closed_at: datetime | None = None
    resumed_at: datetime | None = None
    applied_at: datetime | None = None
    applied_by: str | None = None

    @property
    def pending(self) -> bool:
        """Whether nobody (and no deadline) has settled the request yet."""
        return self.status == PENDING


class ApprovalVoteRecord(BaseModel):
    """One approver's recorded answer."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    request_id: str
    approver: str
    approved: bool
    comment: str | None = None
    channel: str
    digest: str
    nonce: str | None = None
    decided_at: datetime


class VoteOutcome(BaseModel):
    """What one recorded vote did: the request after it, the vote, and every vote so far."""

    model_config = ConfigDict(frozen=True)

    request: ApprovalRequestRecord
    vote: ApprovalVoteRecord
    votes: list[ApprovalVoteRecord]


#: Called inside the decision's transaction with the request, its votes and whether
#: the vote's nonce was already used: raise to refuse the vote.
Admit = Callable[[ApprovalRequestRecord, list[ApprovalVoteRecord], bool], None]
#: Called with every vote (the new one last): the new status, or None to stay pending.
Tally = Callable[[ApprovalRequestRecord, list[ApprovalVoteRecord]], str | None]
