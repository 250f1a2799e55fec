"""Making an approval request: approvers expanded, deadlines, the ledger row."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from wflo_prefect._prefect_compat import block_document_name, load_block
from wflo_prefect.approvals.channels.base import ApprovalChannel
from wflo_prefect.approvals.decisions import new_code_salt
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.approvals.principals import Approvers, Principal
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approval_records import (
    ApprovalRequestRecord,
    PrincipalSnapshot,
    RequestPolicy,
    TierSnapshot,
    WaitMode,
)
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability.correlation import current_correlation

__all__ = [
    "beat",
    "channel_list",
    "create_request",
    "prefect_timeout",
    "saved_channel_refs",
]

# Prefect's own pause timeout is set this far beyond wflo's last deadline.
_PREFECT_MARGIN_S = 86400.0
_FOREVER_S = 10 * 365 * 86400.0


def _directory(policy: ApprovalPolicy) -> Approvers | None:
    if policy.principals is None:
        return None
    if isinstance(policy.principals, Approvers):
        return policy.principals
    return load_block(Approvers, policy.principals)


def _snapshot(users: Mapping[str, Principal]) -> dict[str, PrincipalSnapshot]:
    return {
        name: PrincipalSnapshot(
            email=u.email, slack_id=u.slack_id, api_key_hashes=list(u.api_key_hashes)
        )
        for name, u in users.items()
    }


def channel_list(items: Sequence[Any]) -> list[ApprovalChannel]:
    channels: list[ApprovalChannel] = []
    for item in items:
        if not isinstance(item, ApprovalChannel):
            raise InvalidArgumentError(
                "`notify=` takes approval channel blocks",
                value=item,
                hint="Use SlackApprovalChannel, WebhookApprovalChannel, EmailApprovalChannel "
                "or PagerDutyApprovalChannel",
                docs="approvals.md",
            )
        channels.append(item)
    return channels


def create_request(
    action: str,
    details: dict[str, Any],
    digest: str,
    policy: ApprovalPolicy,
    *,
    mode: WaitMode | None = None,
    wake: str | None = None,
) -> ApprovalRequestRecord:
    """Store a new request; a waiting (not suspending) gate is its waiter, at ``wake``.

    ``mode`` is how the gate will wait (see :data:`WaitMode`); by default
    ``suspend`` or ``pause`` as the policy says.
    """
    directory = _directory(policy)
    tiers = list(policy.escalation)
    if directory is not None:
        # No names: every user of the directory, each still proving who they are.
        first = directory.expand(policy.approvers or [u.name for u in directory.users])
        if not first:
            raise InvalidArgumentError(
                "The Approvers block has no users, so nobody could approve",
                value=policy.principals if isinstance(policy.principals, str) else None,
                hint="Add users to the block, or pass principals=None for an open gate",
                docs="approvals.md",
            )
        tier_users = [directory.expand(t.approvers) for t in tiers]
    else:
        first = {n: Principal(name=n) for n in policy.approvers}
        tier_users = [{n: Principal(name=n) for n in t.approvers} for t in tiers]
    everyone = dict(first)
    for users in tier_users:
        everyone.update(users)
    if first and policy.quorum > len(first):
        raise InvalidArgumentError(
            f"quorum={policy.quorum} needs at least that many distinct approvers",
            value=sorted(first),
            hint="Lower `quorum=` or name more approvers",
            docs="approvals.md",
        )
    correlation = current_correlation()
    now = utcnow()
    deadline = now + timedelta(seconds=policy.timeout) if policy.timeout else None
    expires = now + timedelta(seconds=policy.expires_after) if policy.expires_after else None
    if expires is not None and (deadline is None or expires < deadline):
        deadline = expires
    policy_snapshot = RequestPolicy(
        principals=_snapshot(everyone) if directory is not None else {},
        allow_self_approval=policy.allow_self_approval,
        on_timeout=policy.on_timeout,
        tiers=[
            TierSnapshot(approvers=list(users), timeout=tier.timeout)
            for users, tier in zip(tier_users, tiers, strict=True)
        ],
        code_salt=new_code_salt(),
        correlation=correlation.as_dict(),
        mode=mode or ("suspend" if policy.suspend else "pause"),
        channels=[
            saved_channel_refs(policy.notify),
            *(saved_channel_refs(t.notify) for t in tiers),
        ],
    )
    repo = get_ledger().approvals
    request = repo.create(
        flow_run_id=correlation.flow_run_id,
        task_run_id=correlation.task_run_id,
        action=action,
        details=details,
        digest=digest,
        approvers=list(first),
        quorum=policy.quorum,
        requested_by=policy.requested_by,
        deadline_at=deadline,
        expires_at=expires,
        policy=policy_snapshot,
    )
    if not policy.suspend:
        beat(request.id, wake)
    return request


def saved_channel_refs(channels: Sequence[Any]) -> list[str | None]:
    """``slug/name`` of each channel saved as a block document (None for inline ones).

    The service and the sweep load them to notify escalation tiers and close
    messages when no gate process is left to do it.
    """
    refs: list[str | None] = []
    for channel in channels:
        name = block_document_name(channel)
        refs.append(f"{type(channel).get_block_type_slug()}/{name}" if name else None)
    return refs


def beat(request_id: str, wake: str | None = None, token: str | None = None) -> str:
    """Mark this process as the request's waiter, alive now; return its token."""
    token = token or secrets.token_hex(4)
    get_ledger().approvals.beat(
        request_id, wake=wake, host=socket.gethostname(), pid=os.getpid(), token=token
    )
    return token


def prefect_timeout(policy: ApprovalPolicy) -> float:
    if policy.timeout is None:
        return _FOREVER_S
    total = policy.timeout + sum(t.timeout for t in policy.escalation)
    if policy.expires_after is not None:
        total = min(total, policy.expires_after)
    return total + _PREFECT_MARGIN_S
