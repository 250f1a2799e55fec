"""E-mail channel: one message per approver, over SMTP, with signed decision links.

Each approver gets their own approve / reject links (signed, expiring,
single-use; they need ``PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET``) and
their one-time code for the Prefect UI form, in a mail to their address alone.
An address shared by several approvers (a team mailbox) gets one mail without
links or codes: whoever reads it could otherwise answer as each of them.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from pydantic import Field, SecretStr

from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery

__all__ = ["EmailApprovalChannel"]


def _body(message: ApprovalMessage, approver: str | None) -> str:
    request = message.request
    lines = [message.title, ""]
    lines += [f"  {k}: {v}" for k, v in request.details.items()]
    lines += [
        "",
        f"Request {request.id}",
        f"Digest  {request.digest}",
        f"Deadline: {message.deadline}",
        "",
    ]
    if approver is None:
        lines.append(
            "This address belongs to several approvers, so it gets no decision links or "
            "codes: decide in Slack, with your API key (CLI or REST API), or ask for a "
            "personal address in the Approvers block."
        )
        return "\n".join(lines) + "\n"
    links = message.links.get(approver)
    if links:
        lines += [f"Approve: {links['approve']}", f"Reject:  {links['reject']}", ""]
    code = message.codes.get(approver)
    if code:
        lines.append(f"Or answer in the Prefect UI form with your one-time code: {code}")
    return "\n".join(lines) + "\n"


class EmailApprovalChannel(ApprovalChannel):
    """Send approval requests by e-mail with signed approve / reject links."""

    _block_type_name = "wflo Email Approval Channel"
    _block_type_slug = "wflo-email-approval-channel"
    _description = "E-mail per approver with signed approve / reject links."

    smtp_host: str = Field(description="SMTP server host.", examples=["smtp.example.com"])
    smtp_port: int = Field(default=587, description="SMTP port.")
    sender: str = Field(description="From address.", examples=["wflo@example.com"])
    username: str | None = Field(default=None, description="SMTP user, if the server wants one.")
    password: SecretStr | None = Field(default=None, description="SMTP password.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="SMTP timeout.")

    per_recipient = True

    def channel_name(self) -> str:
        """``email``."""
        return "email"

    def send(self, message: ApprovalMessage) -> Delivery:
        """One e-mail to each approver's own address (credentials only there)."""
        by_address: dict[str, list[str]] = {}
        for name, contact in message.contacts.items():
            if contact.get("email"):
                by_address.setdefault(str(contact["email"]).strip().lower(), []).append(name)
        if not by_address:
            return Delivery("email", delivered=False, detail="no approver has an e-mail address")
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password is not None:
                smtp.login(self.username, self.password.get_secret_value())
            for names in by_address.values():
                mail = EmailMessage()
                mail["From"] = self.sender
                mail["To"] = str(message.contacts[names[0]]["email"])
                mail["Subject"] = message.title[:200]
                mail.set_content(_body(message, names[0] if len(names) == 1 else None))
                smtp.send_message(mail)
        shared = sorted(a for a, n in by_address.items() if len(n) > 1)
        sent = ", ".join(sorted(n for names in by_address.values() for n in names))
        detail = f"sent to {sent}"
        if shared:
            detail += f"; no links or codes to shared addresses {', '.join(shared)}"
        return Delivery("email", delivered=True, detail=detail)
