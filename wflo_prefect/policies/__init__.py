"""Policy engine: CEL conditions evaluated before governed runs, LLM calls and sandboxes.

```python
from wflo_prefect import Notify, Policy, RequireApproval

Policy(
    condition="cost > 100 OR operation == 'delete'",
    actions=[RequireApproval(approvers=["ops"]), Notify("slack://ops")],
)
```
"""

from wflo_prefect.policies.actions import (
    Action,
    AuditLog,
    Halt,
    HaltExecution,
    Notify,
    RequireApproval,
)
from wflo_prefect.policies.blocks import WfloPolicySet
from wflo_prefect.policies.context import active_policies, set_global_policies, use_policies
from wflo_prefect.policies.engine import PolicyOutcome, enforce_policies, evaluate_policies
from wflo_prefect.policies.errors import PolicyConditionError, PolicyViolation
from wflo_prefect.policies.files import lint_policies, load_policies
from wflo_prefect.policies.guard import PolicyGuard
from wflo_prefect.policies.policy import ApprovalRule, Condition, Point, Policy
from wflo_prefect.policies.watchdog import RunHalted

__all__ = [
    "Action",
    "ApprovalRule",
    "AuditLog",
    "Condition",
    "Halt",
    "HaltExecution",
    "Notify",
    "Point",
    "Policy",
    "PolicyConditionError",
    "PolicyGuard",
    "PolicyOutcome",
    "PolicyViolation",
    "RequireApproval",
    "RunHalted",
    "WfloPolicySet",
    "active_policies",
    "enforce_policies",
    "evaluate_policies",
    "lint_policies",
    "load_policies",
    "set_global_policies",
    "use_policies",
]
