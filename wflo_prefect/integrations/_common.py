"""What the framework integrations share: the extra check and the worst-case estimate."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.errors import ConfigurationError

__all__ = ["estimate_input_tokens", "max_output_tokens", "require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise a ``ConfigurationError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"This wflo integration needs {module!r}, which is not installed",
            value=module,
            hint=f"Install it with: pip install 'wflo-prefect[{extra}]'",
            docs="integrations/index.md",
        ) from exc


def estimate_input_tokens(value: Any, provider: str, model: str) -> int:
    """Input tokens of a request's content (messages and tools as JSON-able data), at most.

    Counted as wflo's instrumented clients count a request before it is sent
    (:func:`wflo_prefect.costs.clients._bound.input_bound`: each piece of text with
    the provider's tokenizer or its conservative bound, images and audio at their
    allowance); the usage the provider reports is what is settled. Counting may
    load a tokenizer vocabulary: call it off the event loop.
    """
    return input_bound({"input": value}, ("input",), provider, model).tokens


def max_output_tokens(requested: Any) -> int:
    """The request's output limit, or wflo's default worst case when it sets none."""
    from wflo_prefect.costs.settings import get_cost_settings

    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return requested
    return get_cost_settings().default_max_output_tokens
