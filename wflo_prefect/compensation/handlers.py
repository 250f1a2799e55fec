"""Compensating handlers are stored by import path, so any process can run them.

A handler must be a module-level function (or a Prefect task) that another
process can import; its arguments must survive a JSON round trip. Both are
checked when the compensation is registered, not when it is needed.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from wflo_prefect.errors import InvalidArgumentError

__all__ = ["check_json", "handler_ref", "load_handler"]


def handler_ref(handler: Any) -> str:
    """``module:qualname`` of an importable function; a clear error otherwise."""
    fn = getattr(handler, "fn", handler)  # a Prefect Task: its function's location
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not callable(handler) or not module or not qualname:
        raise InvalidArgumentError(
            "A compensating handler must be a function", value=handler, docs="compensation.md"
        )
    if "<locals>" in qualname or "<lambda>" in qualname or module == "__main__":
        raise InvalidArgumentError(
            "A compensating handler must be importable by another process (a module-level "
            "function in an importable module), so it can run after a crash",
            value=f"{module}:{qualname}",
            hint="Move it to the top level of a module on the workers' path",
            docs="compensation.md",
        )
    ref = f"{module}:{qualname}"
    found = load_handler(ref)
    if found is not handler and found is not fn:
        raise InvalidArgumentError(
            "The compensating handler cannot be found again by its import path",
            value=ref,
            hint="Give it a unique module-level name",
            docs="compensation.md",
        )
    return ref


def load_handler(ref: str) -> Callable[..., Any]:
    """Import the handler ``module:qualname``."""
    module_name, _, qualname = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgumentError(
            "The compensating handler cannot be imported here",
            value=ref,
            hint="Install the code that defines it where compensations run",
            docs="compensation.md",
        ) from exc
    if not callable(target):
        raise InvalidArgumentError("The compensating handler is not callable", value=ref)
    return target  # type: ignore[no-any-return]


def check_json(arguments: dict[str, Any], what: str) -> dict[str, Any]:
    """``arguments`` after a JSON round trip; refuse what JSON cannot keep."""
    try:
        text = json.dumps(arguments, default=_refuse)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"The arguments of {what} must be JSON (strings, numbers, lists, dicts) "
            "so they survive a crash",
            value=str(exc),
            hint="Pass ids or plain values, not live objects",
            docs="compensation.md",
        ) from exc
    result: dict[str, Any] = json.loads(text)
    return result


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} {value!r:.80} is not JSON")
