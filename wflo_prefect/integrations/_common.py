"""What the framework integrations share: the extra check and the worst-case estimate."""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

from wflo_prefect.costs.clients._usage import count_text_chars
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


def estimate_input_tokens(value: Any) -> int:
    """Input tokens of a request's text (messages as JSON-able data), estimated.

    ``ceil(characters / chars_per_token)``, as wflo's instrumented clients estimate
    (``PREFECT_INTEGRATIONS_WFLO_COSTS_CHARS_PER_TOKEN``); the usage the provider
    reports is what is settled.
    """
    from wflo_prefect.costs.settings import get_cost_settings

    per_token = get_cost_settings().chars_per_token
    return max(1, math.ceil(count_text_chars(value) / per_token))


def max_output_tokens(requested: Any) -> int:
    """The request's output limit, or wflo's default worst case when it sets none."""
    from wflo_prefect.costs.settings import get_cost_settings

    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return requested
    return get_cost_settings().default_max_output_tokens
