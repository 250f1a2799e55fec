"""Who may approve: principals (users) and groups, kept in a Prefect Block.

A user has a name, optionally a Slack user id, an e-mail address and the
SHA-256 hashes of their API keys (never the keys). Gates name approvers by user
or group; the names are expanded to users when the request is made, and a
snapshot of those users (hashes only) is stored with the request, so the
service and the CLI can verify an approver without the Block.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.errors import InvalidArgumentError

__all__ = ["Approvers", "Principal", "hash_api_key", "key_matches", "same_text"]


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any characters.

    ``hmac.compare_digest`` raises ``TypeError`` for ``str`` with non-ASCII
    characters, so a crafted header or form value would become a server error.
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def key_matches(api_key: str, hashes: Iterable[str]) -> bool:
    """Whether ``api_key`` hashes to one of ``hashes`` (constant-time comparison)."""
    candidate = hash_api_key(api_key)
    return any(same_text(candidate, h) for h in hashes)


class Principal(BaseModel):
    """A person who can approve."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Unique user name, e.g. `alice`.", examples=["alice"])
    email: str | None = Field(default=None, description="Where e-mail channels reach them.")
    slack_id: str | None = Field(
        default=None, description="Slack user id (`U...`) their button clicks carry."
    )
    api_key_hashes: list[str] = Field(
        default_factory=list,
        description="`sha256:<hex>` hashes of the API keys that prove who they are "
        "(make them with `wflo_prefect.approvals.hash_api_key`).",
    )


class Approvers(ValidatedModel, Block):
    """The directory of approvers: users and groups of users."""

    wflo_docs: ClassVar[str | None] = "approvals.md"

    _block_type_name = "wflo Approvers"
    _block_type_slug = "wflo-approvers"
    _description = "Users (Slack id, e-mail, API-key hashes) and groups who may approve."
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/approvals.md"  # type: ignore[assignment]

    users: list[Principal] = Field(
        default_factory=list, description="The people who may be named as approvers."
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group name to user names, e.g. `{'ops': ['alice', 'bob']}`.",
        examples=[{"ops": ["alice", "bob"]}],
    )

    def user(self, name: str) -> Principal | None:
        """The user called ``name``, if any."""
        return next((u for u in self.users if u.name == name), None)

    def expand(self, names: Iterable[str]) -> dict[str, Principal]:
        """Users named directly or through a group, by name; unknown names are refused."""
        found: dict[str, Principal] = {}
        for name in names:
            members = self.groups.get(name, [name])
            for member in members:
                user = self.user(member)
                if user is None:
                    raise InvalidArgumentError(
                        f"Approver {member!r} is neither a user nor a group of this Approvers "
                        "block",
                        value=member,
                        hint=f"Add it to the block's users or groups (users: "
                        f"{', '.join(u.name for u in self.users) or 'none'})",
                        docs="approvals.md",
                    )
                found[user.name] = user
        return found
