"""Which runs a central budget applies to: its ``applies_to`` selector. Pure: no I/O.

A selector is written ``global`` or ``<kind>:<value>``; a run matches

- ``global``: always;
- ``tag:<tag>``: when the flow run has the tag;
- ``deployment:<name>``: when it is from a deployment of that name
  (``<flow>/<name>``, or the deployment's id, pin one);
- ``user:<name>``: when its attributed user (``attribute_to``, a ``user:<name>``
  tag, a ``user`` parameter) is ``<name>``;
- ``work_pool:<name>``: when it was submitted to that work pool;
- ``flow:<name>``: when its flow has that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from wflo_prefect.errors import InvalidArgumentError

__all__ = ["SELECTOR_KINDS", "BudgetSelector", "RunFacts", "parse_selector"]

SelectorKind = Literal["global", "tag", "deployment", "user", "work_pool", "flow"]
SELECTOR_KINDS: tuple[SelectorKind, ...] = (
    "global",
    "tag",
    "deployment",
    "user",
    "work_pool",
    "flow",
)
#: The selector grammar (also the block field's JSON-schema pattern, so the UI checks it).
SELECTOR_PATTERN = r"^(global|(tag|deployment|user|work_pool|flow):\S.*)$"
_SELECTOR = re.compile(SELECTOR_PATTERN)
_HINT = (
    "Write 'global' or '<kind>:<value>' with kind one of tag, deployment, user, "
    "work_pool, flow, e.g. 'tag:team-a' or 'deployment:research/nightly'"
)


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a selector is matched against: the run's real Prefect context."""

    flow_name: str | None = None
    deployment_id: str | None = None
    deployment_name: str | None = None
    work_pool: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetSelector:
    """A parsed ``applies_to`` selector."""

    kind: SelectorKind
    value: str = ""

    def __str__(self) -> str:
        return "global" if self.kind == "global" else f"{self.kind}:{self.value}"

    @property
    def needs_deployment_name(self) -> bool:
        """Whether matching needs the run's deployment name (one API read)."""
        return self.kind == "deployment" and not _is_uuid(self.value)

    def matches(self, run: RunFacts) -> bool:
        """Whether a run with these facts is governed by the budget."""
        if self.kind == "global":
            return True
        if self.kind == "tag":
            return self.value in run.tags
        if self.kind == "user":
            return run.user == self.value
        if self.kind == "work_pool":
            return run.work_pool == self.value
        if self.kind == "flow":
            return run.flow_name == self.value
        if run.deployment_id is None:
            return False
        if _is_uuid(self.value):
            return run.deployment_id.lower() == self.value.lower()
        if "/" in self.value:
            return f"{run.flow_name}/{run.deployment_name}" == self.value
        return run.deployment_name == self.value


_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))


def parse_selector(text: object) -> BudgetSelector:
    """The selector ``text`` names; :class:`InvalidArgumentError` naming it when it is not one."""
    if not isinstance(text, str) or not _SELECTOR.match(text.strip()):
        raise InvalidArgumentError(
            "A central budget's `applies_to` is not a selector it understands",
            value=text,
            hint=_HINT,
            docs="costs.md#central-budgets",
        )
    stripped = text.strip()
    if stripped == "global":
        return BudgetSelector("global")
    kind, _, value = stripped.partition(":")
    assert kind in SELECTOR_KINDS
    return BudgetSelector(kind, value.strip())
