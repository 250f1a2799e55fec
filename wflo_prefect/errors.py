"""Every error wflo-prefect raises, rooted at :class:`WfloError`.

The tree has two branches, so callers can tell a mistake they can fix in their
code or configuration from a failure that happened while a run was executing::

    WfloError
    ├── WfloUsageError              a mistake in code or configuration: fix and retry
    │   ├── ConfigurationError      a setting, block or environment value is invalid
    │   └── InvalidArgumentError    an argument passed to a wflo function is invalid
    └── WfloRuntimeError            something failed while governing a run
        ├── LedgerError             the governance ledger could not be read or written
        └── ServiceUnavailableError a service wflo needs (Docker, Prefect API) is not reachable

Each error carries the value it is about (``value``), a hint on what to do
(``hint``) and the docs page that explains it (``docs``), and says all three in
its message. Capabilities add their own errors under the matching branch
(``BudgetExceeded``, ``ApprovalRejected``, ``SandboxTimeout`` ...).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "InvalidArgumentError",
    "LedgerError",
    "ServiceUnavailableError",
    "WfloError",
    "WfloRuntimeError",
    "WfloUsageError",
]

_NOTHING: Any = object()

DOCS_ROOT = "docs/"


class WfloError(Exception):
    """Root of every error the package raises."""

    def __init__(
        self,
        message: str,
        *,
        value: Any = _NOTHING,
        hint: str | None = None,
        docs: str | None = None,
    ) -> None:
        self.message = message
        self.value = None if value is _NOTHING else value
        self.hint = hint
        self.docs = docs
        parts = [message]
        if value is not _NOTHING:
            parts.append(f"(got {value!r})")
        text = " ".join(parts)
        if hint:
            text += f". {hint}" if not text.endswith(".") else f" {hint}"
        if docs:
            text += (
                f" See {DOCS_ROOT}{docs}." if text.endswith(".") else f". See {DOCS_ROOT}{docs}."
            )
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles exceptions into failed states and results. Exception's default
        # reduce calls ``cls(*self.args)``, which breaks every subclass whose __init__
        # takes other arguments; rebuild from the instance's state instead, without
        # calling __init__. An attribute that cannot be pickled travels as its repr.
        return (_restore_error, (type(self), self.args, _picklable_state(self.__dict__)))


def _picklable_state(state: dict[str, Any]) -> dict[str, Any]:
    import pickle

    safe: dict[str, Any] = {}
    for key, item in state.items():
        try:
            pickle.dumps(item)
        except Exception:  # any failure to pickle: keep what a reader needs, the text
            item = repr(item)
        safe[key] = item
    return safe


def _restore_error(cls: type[WfloError], args: tuple[Any, ...], state: dict[str, Any]) -> WfloError:
    """Rebuild a pickled :class:`WfloError` without calling its ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class WfloUsageError(WfloError):
    """A mistake in the caller's code or configuration; fix it and run again."""


class ConfigurationError(WfloUsageError, ValueError):
    """A setting, block or environment value is invalid."""


class InvalidArgumentError(WfloUsageError, ValueError):
    """An argument passed to a wflo function or decorator is invalid."""


class WfloRuntimeError(WfloError):
    """Something failed while governing a run."""


class LedgerError(WfloRuntimeError):
    """The governance ledger could not be read or written."""


class ServiceUnavailableError(WfloRuntimeError):
    """A service wflo needs (Docker engine, Prefect API, database) is not reachable."""
