"""Send an approval request to its channels, and tell them when it is settled.

Deliveries run in a background thread so the gate never waits on a slow mail
server; each one is audited (``approval.notified``) with its delivery status.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.decisions import one_time_code
from wflo_prefect.approvals.events import announce
from wflo_prefect.approvals.links import make_link_token
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.observability.logging import get_logger

__all__ = ["build_message", "close_all", "message_for", "notify_all"]

_log = get_logger("approvals.notify")


def build_message(request: ApprovalRequestRecord, tier: int) -> ApprovalMessage:
    """The message for ``request``'s current approvers: signed links and one-time codes."""
    settings = get_approval_settings()
    principals = request.policy.principals
    names = [str(a) for a in request.approvers]
    links: dict[str, dict[str, str]] = {}
    if settings.link_secret is not None and names:
        base = settings.service_url.rstrip("/")
        for name in names:
            links[name] = {
                verb: base
                + "/links/"
                + make_link_token(
                    settings.link_secret,
                    request_id=request.id,
                    approver=name,
                    approve=verb == "approve",
                    digest=request.digest,
                    ttl_seconds=settings.link_ttl_seconds,
                )
                for verb in ("approve", "reject")
            }
    return ApprovalMessage(
        request=request,
        tier=tier,
        service_url=settings.service_url,
        links=links,
        codes={name: one_time_code(request, name) for name in names if principals},
        contacts={name: principals[name].contact() if name in principals else {} for name in names},
    )


def message_for(channel: ApprovalChannel, message: ApprovalMessage) -> ApprovalMessage:
    """What ``channel`` may see: credentials only for channels that deliver per recipient."""
    return message if channel.per_recipient else message.without_credentials()


def _deliver(channel: ApprovalChannel, message: ApprovalMessage) -> Delivery:
    try:
        return channel.send(message_for(channel, message))
    except Exception as exc:  # a channel failing must not stop the others
        return Delivery(channel=channel.channel_name(), delivered=False, detail=repr(exc))


def _send_all(
    request: ApprovalRequestRecord, channels: Sequence[ApprovalChannel | None], tier: int
) -> list[Delivery]:
    message = build_message(request, tier)
    results = []
    for index, channel in enumerate(channels):
        if channel is None:
            continue
        delivery = _deliver(channel, message)
        results.append(delivery)
        announce(
            "notified",
            request,
            outcome="delivered" if delivery.delivered else "failed",
            payload={"channel": delivery.channel, "tier": tier, "detail": delivery.detail},
        )
        if delivery.ref:
            get_ledger().approvals.record_delivery(request.id, tier, index, delivery.ref)
    return results


def notify_all(
    request: ApprovalRequestRecord,
    channels: Sequence[ApprovalChannel | None],
    tier: int,
    *,
    background: bool = True,
) -> threading.Thread | list[Delivery]:
    """Deliver to every channel (in a background thread unless told otherwise).

    A ``None`` keeps a channel's position (its delivery reference is stored by
    tier and position) without sending.
    """
    if not background:
        return _send_all(request, channels, tier)
    thread = threading.Thread(
        target=_send_all, args=(request, channels, tier), name="wflo-approval-notify", daemon=True
    )
    thread.start()
    return thread


def close_all(
    request: ApprovalRequestRecord,
    tiers: Sequence[Sequence[ApprovalChannel | None]],
    decision: ApprovalDecision,
) -> None:
    """Tell every channel that delivered something that the request is settled."""
    fresh = get_ledger().approvals.get(request.id) or request
    refs = get_ledger().approvals.deliveries(request.id)
    for tier, channels in enumerate(tiers):
        message = build_message(fresh, tier)
        for index, channel in enumerate(channels):
            ref = refs.get((tier, index))
            if channel is None or not ref:
                continue
            try:
                result = channel.close(message_for(channel, message), decision, ref)
            except Exception as exc:
                result = Delivery(channel.channel_name(), delivered=False, detail=repr(exc))
            if result is not None:
                announce(
                    "notified",
                    fresh,
                    outcome="closed" if result.delivered else "close_failed",
                    payload={"channel": result.channel, "tier": tier, "detail": result.detail},
                )
