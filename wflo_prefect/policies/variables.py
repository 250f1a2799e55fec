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
| `cost` | double | USD already spent in this flow run |
| `estimated_cost` | double | USD the next LLM call may cost (at `spend`); at `run`, the median |
|  |  | cost of the flow's previous runs in the ledger (0 without history) |
| `run_time`, `execution_time` | double | seconds since the flow run started |
| `provider`, `model` | string | the LLM call's provider and model (at `spend`) |
| `sandbox` | record | the sandbox settings (at `sandbox`): image, network_enabled, runtime ... |
| `workflow` | record | at `sandbox`: `name` (the flow) and `network_enabled` (the sandbox's) |

Money is a ``Decimal`` in Python and a CEL ``double`` in a condition. Every name
has a declared CEL type (:data:`TYPES`): conditions are type-checked against
them when a policy is built.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from wflo_prefect.policies.types import (
    BOOL,
    DOUBLE,
    DYN,
    INT,
    STRING,
    CelType,
    ListType,
    MapType,
    Record,
)

__all__ = ["COMMON", "DEFAULTS", "POINTS", "TYPES", "names_at", "types_at"]

#: Every point, in the order a run meets them.
POINTS: tuple[str, ...] = ("run", "spend", "sandbox")

_STRINGS = MapType(STRING, STRING)
#: The fields of ``SandboxConfig`` as a condition sees them (``model_dump(mode="json")``).
SANDBOX = Record(
    "sandbox",
    {
        "image": STRING,
        "memory_limit": STRING,
        "cpu_limit": DOUBLE,
        "pids_limit": INT,
        "timeout_seconds": DOUBLE,
        "network_enabled": BOOL,
        "allowed_hosts": ListType(STRING),
        "readonly_root": BOOL,
        "tmp_size": STRING,
        "workdir": STRING,
        "workdir_size": STRING,
        "env": _STRINGS,
        "user": STRING,
        "runtime": STRING,
        "seccomp_profile": DYN,
        "apparmor_profile": DYN,
        "output_limit_bytes": INT,
        "max_lifetime_seconds": INT,
        "labels": _STRINGS,
    },
)
WORKFLOW = Record("workflow", {"name": STRING, "network_enabled": BOOL})

#: The CEL type of every name.
TYPES: dict[str, CelType] = {
    "point": STRING,
    "operation": STRING,
    "kind": STRING,
    "name": STRING,
    "flow": STRING,
    "task": STRING,
    "params": MapType(STRING, DYN),
    "tags": ListType(STRING),
    "user": STRING,
    "deployment": STRING,
    "flow_run_id": STRING,
    "cost": DOUBLE,
    "estimated_cost": DOUBLE,
    "run_time": DOUBLE,
    "execution_time": DOUBLE,
    "provider": STRING,
    "model": STRING,
    "sandbox": SANDBOX,
    "workflow": WORKFLOW,
}

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
    "sandbox": frozenset({"sandbox", "workflow"}),
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
    "workflow": {"name": "", "network_enabled": False},
}


def names_at(point: str) -> set[str]:
    """The names conditions evaluated at ``point`` may use."""
    return set(COMMON | _EXTRA[point])


def types_at(points: tuple[str, ...]) -> dict[str, CelType]:
    """The names (and their types) usable at every one of ``points``."""
    usable = set.intersection(*(names_at(p) for p in points))
    return {name: TYPES[name] for name in TYPES if name in usable}
