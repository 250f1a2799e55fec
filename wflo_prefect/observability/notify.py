"""Sending a message through a Prefect notification block (Slack, Teams, webhooks ...).

Used by policy ``Notify`` actions and budget alerts. A target is a block instance
with a ``notify(body, subject)`` method, or the slug ``"<block-type>/<name>"`` of a
saved one. Delivery never raises: the caller audits the returned status.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BLOCK_REF", "check_target", "send_notification"]

BLOCK_REF = re.compile(r"^[a-z0-9][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_target(value: Any) -> Any:
    """``value`` if it can be notified; a ValueError that says what to pass otherwise."""
    if isinstance(value, str):
        if not BLOCK_REF.match(value):
            raise ValueError(
                f"notification target {value!r} is not '<block-type-slug>/<block-name>' "
                "(e.g. 'slack-webhook/ops'); save a notification block first, or pass one"
            )
        return value
    if not callable(getattr(value, "notify", None)):
        raise ValueError(
            f"notification target {value!r} has no notify() method; pass a Prefect "
            "notification block such as SlackWebhook"
        )
    return value


def send_notification(target: Any, *, subject: str, body: str) -> str:
    """Send; return ``"sent"`` or ``"failed: <why>"``."""
    try:
        if isinstance(target, str):
            from prefect.blocks.core import Block

            slug, _, name = target.partition("/")
            target = Block.get_block_class_from_key(slug).load(name)
        target.notify(body, subject=subject)
    except Exception as exc:  # a broken channel must not hide the event; it is audited.
        return f"failed: {type(exc).__name__}: {exc}"
    return "sent"
