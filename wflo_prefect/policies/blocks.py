"""``WfloPolicySet``: a named, saved list of policies, usable from ``policies=`` and globally."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.policies.files import load_policies
from wflo_prefect.policies.policy import Policy

__all__ = ["WfloPolicySet"]


class WfloPolicySet(ValidatedModel, Block):
    """A rule book saved in Prefect: load it by name, pass it to ``policies=`` or
    ``set_global_policies``. Its policies are checked when the block is built or loaded.
    """

    wflo_docs: ClassVar[str | None] = "policies.md"

    _block_type_name = "wflo Policy Set"
    _block_type_slug = "wflo-policy-set"
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/policies.md"  # type: ignore[assignment]
    _description = "A list of wflo policies (CEL conditions and actions)."

    policies: list[Policy] = Field(
        default_factory=list,
        description="The rules, in order (first-match routing with stop: true).",
        examples=[
            [
                {
                    "name": "high_cost_approval",
                    "condition": "estimated_cost > 100",
                    "actions": [{"kind": "require_approval", "approvers": ["finance-team"]}],
                }
            ]
        ],
    )

    @classmethod
    def from_file(cls, path: str | Path) -> WfloPolicySet:
        """A policy set with the rules of a YAML policy file."""
        return cls(policies=list(load_policies(path)))
