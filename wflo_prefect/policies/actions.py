"""What a matching policy does: ``AuditLog``, ``Notify``, ``Halt``, ``RequireApproval``.

Actions of all matching policies run in this order: audit entries first, then
notifications, then a halt (if any policy says so), then approvals. So a run
that is stopped is still audited and announced, and nobody is asked to approve
what a policy has already forbidden.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.observability.notify import check_target
from wflo_prefect.policies.targets import parse_target

__all__ = ["Action", "AuditLog", "Halt", "HaltExecution", "Notify", "RequireApproval"]

_UNSET: Any = object()


class _Action(ValidatedModel, BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class AuditLog(_Action):
    """Write an entry to the audit log (and let the run go on)."""

    wflo_docs: ClassVar[str | None] = "policies.md"

    kind: Literal["audit_log"] = "audit_log"
    severity: Literal["low", "medium", "high", "critical"] = Field(
        default="medium", description="How serious the match is, for whoever reads the log."
    )
    message: str = Field(default="", description="Extra text for the entry.")


class Notify(_Action):
    """Send a message through a Prefect notification block.

    ``target`` (also the first positional argument: ``Notify("slack://finance")``) is
    a notification block (``SlackWebhook``, ``CustomWebhookNotificationBlock`` ...),
    the slug of a saved one, ``"<block-type>/<name>"``, or a URL naming a saved one:
    ``slack://NAME``, ``pagerduty://NAME``, ``webhook://NAME``, ``email://ADDRESS``
    (see :mod:`wflo_prefect.policies.targets`). Saved blocks are loaded when the
    policy fires. A ``wflo.policy.matched`` Prefect event is emitted for every match
    as well, so automations can route it too.
    """

    kind: Literal["notify"] = "notify"
    target: Any = Field(
        description="A notification block, '<block-type-slug>/<name>', or a URL such as "
        "'slack://NAME'.",
        examples=["slack://finance-channel", "pagerduty://ops", "email://ops@example.com"],
    )
    message: str = Field(default="", description="Text to send; default: policy and condition.")

    def __init__(self, target: Any = _UNSET, /, **data: Any) -> None:
        if target is not _UNSET:
            data["target"] = target
        super().__init__(**data)

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: Any) -> Any:
        if isinstance(value, str) and parse_target(value) is not None:
            return value
        return check_target(value)


class Halt(_Action):
    """Stop: the governed code does not run; the run fails with ``PolicyViolation``."""

    kind: Literal["halt"] = "halt"
    reason: str = Field(default="", description="Why, shown in the error and the audit log.")


#: The seeds' spelling of :class:`Halt`.
HaltExecution = Halt


class RequireApproval(_Action):
    """Ask people to approve before the governed code runs, through an approval gate.

    The gate is the one of :func:`~wflo_prefect.require_approval`: the run pauses
    with a form in the Prefect UI, the request is in ``wflo approvals list``, and
    ``notify`` channels are told (Slack, webhook, e-mail, PagerDuty), with
    ``escalation`` tiers added and notified at each deadline, then ``on_timeout``.
    """

    kind: Literal["require_approval"] = "require_approval"
    approvers: tuple[str, ...] = Field(
        default=(), description="User or group names; empty means any listed principal."
    )
    quorum: int = Field(default=1, ge=1, description="Distinct approvals needed.")
    timeout: float = Field(default=3600, gt=0, description="Seconds to wait for a decision.")
    on_timeout: Literal["reject", "approve", "escalate", "fail"] = Field(
        default="reject", description="What a timeout means."
    )
    principals: str | None = Field(
        default=None, description="Name of a saved Approvers block that defines the people."
    )
    notify: tuple[Any, ...] = Field(
        default=(),
        description="Approval channel blocks told about the request, or "
        "'<block-type-slug>/<name>' of saved ones (loaded when the policy fires).",
        examples=[["slack-approval-channel/finance"]],
    )
    escalation: tuple[Any, ...] = Field(
        default=(),
        description="Escalation tiers: EscalationTier objects or "
        "{'approvers': [...], 'timeout': seconds, 'notify': [channels]}.",
    )
    expires_after: float | None = Field(
        default=None, gt=0, description="Decisions after this many seconds are refused."
    )

    @field_validator("notify", mode="before")
    @classmethod
    def _check_channels(cls, value: Any) -> Any:
        items = (value,) if isinstance(value, str) or not isinstance(value, list | tuple) else value
        for item in items:
            _check_channel(item)
        return tuple(items)

    @field_validator("escalation", mode="before")
    @classmethod
    def _check_tiers(cls, value: Any) -> Any:
        from wflo_prefect.approvals.policy import EscalationTier

        tiers = []
        for tier in value if isinstance(value, list | tuple) else (value,):
            if isinstance(tier, EscalationTier):
                found = tier
            else:
                found = EscalationTier.model_validate(tier)
            for channel in found.notify:
                _check_channel(channel)
            tiers.append(found)
        return tuple(tiers)


def _check_channel(item: Any) -> None:
    from wflo_prefect.approvals.channels.base import ApprovalChannel

    if isinstance(item, ApprovalChannel):
        return
    if isinstance(item, str) and item.count("/") == 1 and all(item.split("/")):
        return
    raise ValueError(
        f"notify= takes approval channel blocks (SlackApprovalChannel, WebhookApprovalChannel, "
        f"EmailApprovalChannel, PagerDutyApprovalChannel) or '<block-type-slug>/<name>' of "
        f"saved ones, not {item!r}"
    )


Action = Annotated[AuditLog | Notify | Halt | RequireApproval, Field(discriminator="kind")]
