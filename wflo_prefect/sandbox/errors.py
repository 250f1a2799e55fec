"""Errors of the sandbox, under the package's two branches::

WfloUsageError
└── InvalidArgumentError
    ├── SandboxConfigError          a SandboxConfig or job variable would loosen the hardening
    └── SandboxSerializationError   a sandboxed task's arguments or result cannot be pickled
WfloRuntimeError
└── SandboxError                    the sandbox could not run the code
    ├── SandboxTimeout              the code ran past ``timeout_seconds``; the container was killed
    ├── SandboxTaskError            a sandboxed task raised; carries the remote traceback
    └── ServiceUnavailableError     (package-wide) no Docker engine / image
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wflo_prefect.errors import InvalidArgumentError, WfloRuntimeError

if TYPE_CHECKING:
    from wflo_prefect.sandbox.result import SandboxResult

__all__ = [
    "SandboxConfigError",
    "SandboxError",
    "SandboxSerializationError",
    "SandboxTaskError",
    "SandboxTimeout",
]

DOCS = "sandbox.md"


class SandboxConfigError(InvalidArgumentError):
    """A sandbox setting is invalid or would loosen the sandbox's hardening."""

    def __init__(self, message: str, *, value: Any, hint: str) -> None:
        super().__init__(message, value=value, hint=hint, docs=DOCS)


class SandboxSerializationError(InvalidArgumentError):
    """A sandboxed task's arguments or result cannot cross the container boundary."""

    def __init__(self, message: str, *, value: Any, hint: str) -> None:
        super().__init__(message, value=value, hint=hint, docs=DOCS)


class SandboxError(WfloRuntimeError):
    """The sandbox could not run the code (container died, engine failed ...)."""

    def __init__(
        self,
        message: str,
        *,
        value: Any = None,
        hint: str | None = None,
        result: SandboxResult | None = None,
    ) -> None:
        self.result = result
        super().__init__(message, value=value, hint=hint, docs=DOCS)


class SandboxTimeout(SandboxError):
    """The code ran longer than the sandbox's ``timeout_seconds``; its container was killed.

    ``result`` holds what the code printed before it was killed (``timed_out`` is True).
    """


class SandboxTaskError(SandboxError):
    """A task function running in the sandbox raised; the message carries its traceback."""
