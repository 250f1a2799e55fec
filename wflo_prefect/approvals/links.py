"""Signed decision links: approve or reject without logging in, once, until they expire.

A link carries the request id, the approver, the decision, the digest, an expiry
and a random nonce, signed with HMAC-SHA256 under the service's link secret. The
service refuses a link with a bad signature or past its expiry, and the nonce is
stored with the decision, so the same link never decides twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from pydantic import SecretStr

from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.principals import same_text
from wflo_prefect.errors import ConfigurationError

__all__ = ["LinkClaim", "make_link_token", "read_link_token"]


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a verified link says."""

    request_id: str
    approver: str
    approve: bool
    digest: str
    expires: int
    nonce: str


def _secret(secret: SecretStr | None) -> bytes:
    if secret is None or not secret.get_secret_value():
        raise ConfigurationError(
            "Signed approval links need a link secret",
            value=None,
            hint="Set PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET (the same value for "
            "the flows and `wflo approvals serve`)",
            docs="approvals.md",
        )
    return secret.get_secret_value().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_link_token(
    secret: SecretStr | None,
    *,
    request_id: str,
    approver: str,
    approve: bool,
    digest: str,
    ttl_seconds: int,
) -> str:
    """A signed token for one approver's one decision on one request."""
    claim = {
        "r": request_id,
        "a": approver,
        "d": 1 if approve else 0,
        "h": digest,
        "e": int(time.time()) + ttl_seconds,
        "n": secrets.token_urlsafe(12),
    }
    body = _b64(json.dumps(claim, separators=(",", ":")).encode())
    mac = hmac.new(_secret(secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_link_token(secret: SecretStr | None, token: str) -> LinkClaim:
    """Verify a token's signature and expiry; return its claim."""
    body, _, signature = token.partition(".")
    raw = body.encode("utf-8", "surrogatepass")
    expected = _b64(hmac.new(_secret(secret), raw, hashlib.sha256).digest())
    if not signature or not same_text(signature, expected):
        raise DecisionRefused(
            "bad_credentials",
            "This approval link is not signed by this service",
            value=token[:16] + "...",
            hint="Use the link from the notification unchanged",
        )
    padded = body + "=" * (-len(body) % 4)
    claim = json.loads(base64.urlsafe_b64decode(padded))
    if int(claim["e"]) < time.time():
        raise DecisionRefused(
            "expired",
            "This approval link has expired",
            value=claim["r"],
            hint="Decide from the CLI, Slack or the Prefect UI instead",
        )
    return LinkClaim(
        request_id=str(claim["r"]),
        approver=str(claim["a"]),
        approve=bool(claim["d"]),
        digest=str(claim["h"]),
        expires=int(claim["e"]),
        nonce=f"link:{claim['n']}",
    )
