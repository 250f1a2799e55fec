"""wflo-prefect: safety controls for AI-agent workflows, as a Prefect 3 extension.

Public names live here; everything else is an implementation module.
"""

from wflo_prefect._version import __version__
from wflo_prefect.decorators import governed_flow, governed_task
from wflo_prefect.errors import (
    ConfigurationError,
    InvalidArgumentError,
    LedgerError,
    ServiceUnavailableError,
    WfloError,
    WfloRuntimeError,
    WfloUsageError,
)
from wflo_prefect.settings import WfloSettings

__all__ = [
    "ConfigurationError",
    "InvalidArgumentError",
    "LedgerError",
    "ServiceUnavailableError",
    "WfloError",
    "WfloRuntimeError",
    "WfloSettings",
    "WfloUsageError",
    "__version__",
    "governed_flow",
    "governed_task",
]
