"""Local test servers' plumbing: free loopback ports and a real SMTP server's inbox."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.message import Message
from typing import Any


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler that keeps every message a local SMTP server receives."""

    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"
