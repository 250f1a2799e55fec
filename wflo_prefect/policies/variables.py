"""The names a policy condition can use, at each point where policies run.

| name | type | meaning |
|---|---|---|
| `point` | string | `run`, `spend` or `sandbox` |
| `operation` | string | the governed code's `operation=` (empty if none) |
| `kind` | string | `flow` or `task` |
| `name` | string | the flow's or task's name |
| `flow` | string | the flow's name |
| `task` | string | the task's name (empty in a flow body) |
| `params` | map | the call's arguments by name |
| `tags` | list | the Prefect run's tags |
| `user` | string | from a `user:<name>` tag (empty if none) |
| `deployment` | string | the deployment id (empty if none) |
| `flow_run_id` | string | the Prefect flow run id |
| `cost` | decimal | USD already spent in this flow run |
| `estimated_cost` | decimal | USD the next call may cost (0 at `run`) |
| `run_time`, `execution_time` | double | seconds since the flow run started |
| `provider`, `model` | string | the LLM call's provider and model (at `spend`) |
| `sandbox` | map | the sandbox settings (at `sandbox`): image, network_enabled, runtime ... |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["COMMON", "DEFAULTS", "names_at"]

COMMON = frozenset(
    {
        "point",
        "operation",
        "kind",
        "name",
        "flow",
        "task",
        "params",
        "tags",
        "user",
        "deployment",
        "flow_run_id",
        "cost",
        "estimated_cost",
        "run_time",
        "execution_time",
    }
)
_EXTRA: dict[str, frozenset[str]] = {
    "run": frozenset(),
    "spend": frozenset({"provider", "model"}),
    "sandbox": frozenset({"sandbox"}),
}

#: Neutral values for names a point does not fill in.
DEFAULTS: dict[str, Any] = {
    "operation": "",
    "kind": "",
    "name": "",
    "flow": "",
    "task": "",
    "params": {},
    "tags": [],
    "user": "",
    "deployment": "",
    "flow_run_id": "",
    "cost": Decimal(0),
    "estimated_cost": Decimal(0),
    "run_time": 0.0,
    "execution_time": 0.0,
    "provider": "",
    "model": "",
    "sandbox": {},
}


def names_at(point: str) -> set[str]:
    """The names conditions evaluated at ``point`` may use."""
    return set(COMMON | _EXTRA[point])
