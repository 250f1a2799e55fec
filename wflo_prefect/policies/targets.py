"""Notification targets written as URLs: ``slack://``, ``pagerduty://``, ``webhook://``, ``email://``.

A URL target names a saved block, so no secret is ever written in a policy:

| target | sent through |
|---|---|
| ``slack://NAME`` | the saved Prefect ``SlackWebhook`` block ``NAME`` |
| ``pagerduty://NAME`` | the saved Prefect ``PagerDutyWebHook`` block ``NAME`` |
| ``webhook://NAME`` | the saved Prefect ``CustomWebhookNotificationBlock`` ``NAME`` |
| ``email://ADDRESS`` | an e-mail to ``ADDRESS`` with the SMTP settings of the saved |
|  | ``EmailApprovalChannel`` block ``default`` (``email://ADDRESS?via=NAME`` for another) |

The block is loaded when the policy fires; a missing block is a failed delivery,
audited like any other (``policy.notified``), never an exception in the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMES", "UrlTarget", "parse_target"]

#: URL scheme -> Prefect block type slug.
SCHEMES: dict[str, str] = {
    "slack": "slack-webhook",
    "pagerduty": "pager-duty-webhook",
    "webhook": "custom-webhook",
    "email": "wflo-email-approval-channel",
}
_URL = re.compile(r"^(?P<scheme>[a-z]+)://(?P<name>[^?\s]+)(?:\?via=(?P<via>[A-Za-z0-9_.-]+))?$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BLOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class UrlTarget:
    """A parsed URL target; ``notify()`` loads its block and sends."""

    scheme: str
    name: str
    via: str = "default"

    def notify(self, body: str, subject: str | None = None) -> None:
        """Send ``body`` through the block the URL names (raises if it cannot)."""
        from prefect.blocks.core import Block

        if self.scheme != "email":
            block: Any = Block.get_block_class_from_key(SCHEMES[self.scheme]).load(self.name)
            block.notify(body, subject=subject)
            return
        import smtplib
        from email.message import EmailMessage

        from wflo_prefect.approvals.channels import EmailApprovalChannel

        channel: Any = EmailApprovalChannel.load(self.via)
        mail = EmailMessage()
        mail["From"] = channel.sender
        mail["To"] = self.name
        mail["Subject"] = subject or "wflo policy"
        mail.set_content(body)
        with smtplib.SMTP(
            channel.smtp_host, channel.smtp_port, timeout=channel.timeout_seconds
        ) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username and channel.password is not None:
                smtp.login(channel.username, channel.password.get_secret_value())
            smtp.send_message(mail)

    def __str__(self) -> str:
        via = f"?via={self.via}" if self.via != "default" else ""
        return f"{self.scheme}://{self.name}{via}"


def parse_target(text: str) -> UrlTarget | None:
    """The URL target ``text`` names; None when it is not a URL; ValueError when it is a bad one."""
    if "://" not in text:
        return None
    match = _URL.match(text)
    if match is None or match["scheme"] not in SCHEMES:
        raise ValueError(
            f"notification target {text!r} is not one of "
            f"{', '.join(s + '://NAME' for s in SCHEMES)} (email://ADDRESS takes an address)"
        )
    scheme, name = match["scheme"], match["name"]
    if scheme == "email" and not _ADDRESS.match(name):
        raise ValueError(f"notification target {text!r}: {name!r} is not an e-mail address")
    if scheme != "email" and not _BLOCK_NAME.match(name):
        raise ValueError(f"notification target {text!r}: {name!r} is not a block name")
    if match["via"] and scheme != "email":
        raise ValueError(f"notification target {text!r}: ?via= is for email:// targets only")
    return UrlTarget(scheme, name, match["via"] or "default")
