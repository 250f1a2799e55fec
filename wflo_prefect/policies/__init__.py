"""Policy engine: CEL conditions evaluated before governed runs, LLM calls and sandboxes.

```
Policy(condition="cost > 100 OR operation == 'delete'",
       actions=[RequireApproval(approvers=["ops"]), Notify("slack-webhook/ops")])
```
"""

from wflo_prefect.policies.actions import Action, AuditLog, Halt, Notify, RequireApproval
from wflo_prefect.policies.context import active_policies, set_global_policies, use_policies
from wflo_prefect.policies.engine import PolicyOutcome, enforce_policies, evaluate_policies
from wflo_prefect.policies.errors import PolicyViolation
from wflo_prefect.policies.guard import PolicyGuard
from wflo_prefect.policies.policy import Point, Policy

__all__ = [
    "Action",
    "AuditLog",
    "Halt",
    "Notify",
    "Point",
    "Policy",
    "PolicyGuard",
    "PolicyOutcome",
    "PolicyViolation",
    "RequireApproval",
    "active_policies",
    "enforce_policies",
    "evaluate_policies",
    "set_global_policies",
    "use_policies",
]
