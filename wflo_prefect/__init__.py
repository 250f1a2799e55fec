"""wflo-prefect: safety controls for AI-agent workflows, as a Prefect 3 extension.

Public names live here; everything else is an implementation module.

The names are imported on first use (PEP 562), so ``import wflo_prefect`` and the
``wflo`` command line do not pay for Prefect, SQLAlchemy and Docker until a name that
needs them is touched. Prefect discovers the blocks and the ``docker-sandbox`` worker
type through :mod:`wflo_prefect._collection`, the package's ``prefect.collections``
entry point.
"""

import importlib as _importlib
import typing as _typing

from wflo_prefect._version import __version__

if _typing.TYPE_CHECKING:
    from wflo_prefect.approvals import (
        ApprovalDecision,
        ApprovalGateError,
        ApprovalPolicy,
        ApprovalRejected,
        ApprovalTimeout,
        Approvers,
        DecisionRefused,
        EmailApprovalChannel,
        PagerDutyApprovalChannel,
        SlackApprovalChannel,
        WebhookApprovalChannel,
        arequire_approval,
        require_approval,
    )
    from wflo_prefect.compensation import (
        CompensatingAction,
        CompensationReport,
        StateSnapshot,
        add_compensating_action,
        compensate,
        create_snapshot,
        current_run,
        execute_compensating_actions,
        list_snapshots,
        prune_snapshots,
        restore_snapshot,
        restore_to_snapshot,
        restore_to_time,
        run_compensations,
        snapshot,
    )
    from wflo_prefect.costs import (
        Budget,
        BudgetExceeded,
        CustomPrice,
        UnknownModelPrice,
        WfloBudget,
        WfloCustomPrice,
        estimate_cost,
        instrument,
        metered_call,
        record_llm_usage,
    )
    from wflo_prefect.decorators import (
        governed_flow,
        governed_task,
    )
    from wflo_prefect.errors import (
        ConfigurationError,
        InvalidArgumentError,
        LedgerError,
        ServiceUnavailableError,
        WfloError,
        WfloRuntimeError,
        WfloUsageError,
    )
    from wflo_prefect.policies import (
        ApprovalRule,
        AuditLog,
        Condition,
        Halt,
        HaltExecution,
        Notify,
        Policy,
        PolicyConditionError,
        PolicyViolation,
        RequireApproval,
        RunHalted,
        WfloPolicySet,
        set_global_policies,
    )
    from wflo_prefect.sandbox import (
        DockerSandbox,
        SandboxConfig,
        SandboxConfigError,
        SandboxError,
        SandboxResult,
        SandboxSerializationError,
        SandboxTaskError,
        SandboxTimeout,
        WarmPool,
    )
    from wflo_prefect.settings import (
        WfloSettings,
    )

# The module that defines each public name.
_SOURCES: dict[str, str] = {
    "ApprovalDecision": "wflo_prefect.approvals",
    "ApprovalGateError": "wflo_prefect.approvals",
    "ApprovalPolicy": "wflo_prefect.approvals",
    "ApprovalRejected": "wflo_prefect.approvals",
    "ApprovalRule": "wflo_prefect.policies",
    "ApprovalTimeout": "wflo_prefect.approvals",
    "Approvers": "wflo_prefect.approvals",
    "AuditLog": "wflo_prefect.policies",
    "Budget": "wflo_prefect.costs",
    "BudgetExceeded": "wflo_prefect.costs",
    "CompensatingAction": "wflo_prefect.compensation",
    "CompensationReport": "wflo_prefect.compensation",
    "Condition": "wflo_prefect.policies",
    "ConfigurationError": "wflo_prefect.errors",
    "CustomPrice": "wflo_prefect.costs",
    "DecisionRefused": "wflo_prefect.approvals",
    "DockerSandbox": "wflo_prefect.sandbox",
    "EmailApprovalChannel": "wflo_prefect.approvals",
    "Halt": "wflo_prefect.policies",
    "HaltExecution": "wflo_prefect.policies",
    "InvalidArgumentError": "wflo_prefect.errors",
    "LedgerError": "wflo_prefect.errors",
    "Notify": "wflo_prefect.policies",
    "PagerDutyApprovalChannel": "wflo_prefect.approvals",
    "Policy": "wflo_prefect.policies",
    "PolicyConditionError": "wflo_prefect.policies",
    "PolicyViolation": "wflo_prefect.policies",
    "RequireApproval": "wflo_prefect.policies",
    "RunHalted": "wflo_prefect.policies",
    "SandboxConfig": "wflo_prefect.sandbox",
    "SandboxConfigError": "wflo_prefect.sandbox",
    "SandboxError": "wflo_prefect.sandbox",
    "SandboxResult": "wflo_prefect.sandbox",
    "SandboxSerializationError": "wflo_prefect.sandbox",
    "SandboxTaskError": "wflo_prefect.sandbox",
    "SandboxTimeout": "wflo_prefect.sandbox",
    "ServiceUnavailableError": "wflo_prefect.errors",
    "SlackApprovalChannel": "wflo_prefect.approvals",
    "StateSnapshot": "wflo_prefect.compensation",
    "UnknownModelPrice": "wflo_prefect.costs",
    "WarmPool": "wflo_prefect.sandbox",
    "WebhookApprovalChannel": "wflo_prefect.approvals",
    "WfloBudget": "wflo_prefect.costs",
    "WfloCustomPrice": "wflo_prefect.costs",
    "WfloError": "wflo_prefect.errors",
    "WfloPolicySet": "wflo_prefect.policies",
    "WfloRuntimeError": "wflo_prefect.errors",
    "WfloSettings": "wflo_prefect.settings",
    "WfloUsageError": "wflo_prefect.errors",
    "add_compensating_action": "wflo_prefect.compensation",
    "arequire_approval": "wflo_prefect.approvals",
    "compensate": "wflo_prefect.compensation",
    "create_snapshot": "wflo_prefect.compensation",
    "current_run": "wflo_prefect.compensation",
    "estimate_cost": "wflo_prefect.costs",
    "execute_compensating_actions": "wflo_prefect.compensation",
    "governed_flow": "wflo_prefect.decorators",
    "governed_task": "wflo_prefect.decorators",
    "instrument": "wflo_prefect.costs",
    "list_snapshots": "wflo_prefect.compensation",
    "metered_call": "wflo_prefect.costs",
    "prune_snapshots": "wflo_prefect.compensation",
    "record_llm_usage": "wflo_prefect.costs",
    "require_approval": "wflo_prefect.approvals",
    "restore_snapshot": "wflo_prefect.compensation",
    "restore_to_snapshot": "wflo_prefect.compensation",
    "restore_to_time": "wflo_prefect.compensation",
    "run_compensations": "wflo_prefect.compensation",
    "set_global_policies": "wflo_prefect.policies",
    "snapshot": "wflo_prefect.compensation",
}

__all__ = [
    "ApprovalDecision",
    "ApprovalGateError",
    "ApprovalPolicy",
    "ApprovalRejected",
    "ApprovalRule",
    "ApprovalTimeout",
    "Approvers",
    "AuditLog",
    "Budget",
    "BudgetExceeded",
    "CompensatingAction",
    "CompensationReport",
    "Condition",
    "ConfigurationError",
    "CustomPrice",
    "DecisionRefused",
    "DockerSandbox",
    "EmailApprovalChannel",
    "Halt",
    "HaltExecution",
    "InvalidArgumentError",
    "LedgerError",
    "Notify",
    "PagerDutyApprovalChannel",
    "Policy",
    "PolicyConditionError",
    "PolicyViolation",
    "RequireApproval",
    "RunHalted",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxError",
    "SandboxResult",
    "SandboxSerializationError",
    "SandboxTaskError",
    "SandboxTimeout",
    "ServiceUnavailableError",
    "SlackApprovalChannel",
    "StateSnapshot",
    "UnknownModelPrice",
    "WarmPool",
    "WebhookApprovalChannel",
    "WfloBudget",
    "WfloCustomPrice",
    "WfloError",
    "WfloPolicySet",
    "WfloRuntimeError",
    "WfloSettings",
    "WfloUsageError",
    "__version__",
    "add_compensating_action",
    "arequire_approval",
    "compensate",
    "create_snapshot",
    "current_run",
    "estimate_cost",
    "execute_compensating_actions",
    "governed_flow",
    "governed_task",
    "instrument",
    "list_snapshots",
    "metered_call",
    "prune_snapshots",
    "record_llm_usage",
    "require_approval",
    "restore_snapshot",
    "restore_to_snapshot",
    "restore_to_time",
    "run_compensations",
    "set_global_policies",
    "snapshot",
]


def __getattr__(name: str) -> _typing.Any:
    """Import a public name from its module on first use, then keep it here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'wflo_prefect' has no attribute {name!r}")
    value = getattr(_importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
