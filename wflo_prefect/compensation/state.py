"""``StateSnapshot``: how to capture and restore the state a governed step changes.

``snapshot=StateSnapshot(capture=..., restore=...)`` on a governed flow or task
captures the state before the function runs; with ``rollback_enabled=True`` a
failure restores it through ``restore`` before the error goes on. Inside the
run, :func:`~wflo_prefect.create_snapshot` (no data) captures through the same
handler and :func:`~wflo_prefect.restore_snapshot` restores through it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from wflo_prefect.errors import InvalidArgumentError

__all__ = ["StateSnapshot", "active_state", "call_with", "using_state"]


def _required(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(getattr(fn, "fn", fn)).parameters.values()
    return [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def call_with(fn: Callable[..., Any], available: Mapping[str, Any]) -> Any:
    """Call ``fn`` with the values of ``available`` it declares, by name."""
    params = inspect.signature(getattr(fn, "fn", fn)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**available)
    return fn(**{k: v for k, v in available.items() if k in params})


@dataclass(frozen=True)
class StateSnapshot:
    """``capture`` returns the state (a JSON dict) before the step; ``restore(data)`` puts it back.

    Both receive, by name, those of the governed function's arguments they
    declare; ``restore`` also receives ``data``, what ``capture`` returned.
    ``name`` names the snapshots (default ``"<flow|task>:<function name>"``).
    """

    capture: Callable[..., Mapping[str, Any]]
    restore: Callable[..., Any] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        for role, fn in (("capture", self.capture), ("restore", self.restore)):
            if fn is not None and not callable(fn):
                raise InvalidArgumentError(
                    f"StateSnapshot({role}=...) takes a function",
                    value=fn,
                    docs="compensation.md",
                )
        if self.restore is not None:
            params = inspect.signature(getattr(self.restore, "fn", self.restore)).parameters
            if "data" not in params and not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
            ):
                raise InvalidArgumentError(
                    "StateSnapshot(restore=...) must take `data`, the captured state",
                    value=getattr(self.restore, "__qualname__", self.restore),
                    hint="Define it as def restore(data: dict, ...) -> None",
                    docs="compensation.md",
                )

    def check_against(self, fn: Callable[..., Any]) -> None:
        """Refuse handlers that need arguments the governed function does not have."""
        offered = set(inspect.signature(fn).parameters)
        for role, handler, extra in (
            ("capture", self.capture, set()),
            ("restore", self.restore, {"data"}),
        ):
            if handler is None:
                continue
            missing = [p for p in _required(handler) if p not in offered | extra]
            if missing:
                raise InvalidArgumentError(
                    f"StateSnapshot({role}=...) needs {missing}, which {fn.__qualname__} "
                    "does not have",
                    value=missing,
                    hint="Name its parameters after the governed function's",
                    docs="compensation.md",
                )


_ACTIVE: ContextVar[tuple[StateSnapshot, dict[str, Any]] | None] = ContextVar(
    "wflo_state_snapshot", default=None
)


def active_state() -> tuple[StateSnapshot, dict[str, Any]] | None:
    """The state handler of the innermost governed run that declared one, with its arguments."""
    return _ACTIVE.get()


@contextmanager
def using_state(state: StateSnapshot, arguments: dict[str, Any]) -> Iterator[None]:
    """Make ``state`` the active handler inside the block."""
    token = _ACTIVE.set((state, arguments))
    try:
        yield
    finally:
        _ACTIVE.reset(token)
