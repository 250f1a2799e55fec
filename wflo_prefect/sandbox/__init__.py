"""Sandboxed execution: untrusted code in a locked-down Docker container.

``DockerSandbox`` runs commands and Python in a container built from a
:class:`SandboxConfig`; ``governed_task(sandbox=SandboxConfig(...))`` runs a task's
function itself there; the ``docker-sandbox`` worker type runs whole flow runs in
hardened containers. See docs/sandbox.md for the security model.
"""

from wflo_prefect.governance import register_guard
from wflo_prefect.sandbox.cleanup import Collected, collect_garbage
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.errors import (
    SandboxConfigError,
    SandboxError,
    SandboxSerializationError,
    SandboxTaskError,
    SandboxTimeout,
)
from wflo_prefect.sandbox.guard import SandboxGuard, run_in_sandbox
from wflo_prefect.sandbox.result import SandboxResult
from wflo_prefect.sandbox.sandbox import DockerSandbox
from wflo_prefect.sandbox.warm_pool import WarmPool

__all__ = [
    "Collected",
    "DockerSandbox",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxError",
    "SandboxGuard",
    "SandboxResult",
    "SandboxSerializationError",
    "SandboxTaskError",
    "SandboxTimeout",
    "WarmPool",
    "collect_garbage",
    "run_in_sandbox",
]

register_guard(SandboxGuard())
