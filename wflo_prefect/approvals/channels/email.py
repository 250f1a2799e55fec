"""E-mail channel: one message per approver, over SMTP, with signed decision links.

Each approver gets their own approve / reject links (signed, expiring,
single-use; they need ``PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET``) and
their one-time code for the Prefect UI form.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from pydantic import Field, SecretStr

from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery

__all__ = ["EmailApprovalChannel"]


def _body(message: ApprovalMessage, approver: str) -> str:
    request = message.request
    lines = [message.title, ""]
    lines += [f"  {k}: {v}" for k, v in request.details.items()]
    lines += ["", f"Request {request.id}", f"Digest  {request.digest}", ""]
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

    def channel_name(self) -> str:
        """``email``."""
        return "email"

    def send(self, message: ApprovalMessage) -> Delivery:
        """One e-mail to each approver that has an address."""
        recipients = {n: c["email"] for n, c in message.contacts.items() if c.get("email")}
        if not recipients:
            return Delivery("email", delivered=False, detail="no approver has an e-mail address")
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password is not None:
                smtp.login(self.username, self.password.get_secret_value())
            for approver, address in recipients.items():
                mail = EmailMessage()
                mail["From"] = self.sender
                mail["To"] = address
                mail["Subject"] = message.title[:200]
                mail.set_content(_body(message, approver))
                smtp.send_message(mail)
        return Delivery("email", delivered=True, detail=f"sent to {', '.join(sorted(recipients))}")
