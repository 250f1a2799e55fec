"""Each framework integration names the extra to install when its framework is missing."""

from __future__ import annotations

import importlib
import sys

import pytest

from wflo_prefect.errors import ConfigurationError

CASES = [
    ("wflo_prefect.integrations.pydantic_ai", "pydantic_ai", "pydantic-ai"),
    ("wflo_prefect.integrations.litellm", "litellm", "litellm"),
    ("wflo_prefect.integrations.langchain", "langchain_core", "langchain"),
]


@pytest.mark.parametrize(("module", "framework", "extra"), CASES)
def test_missing_framework_names_the_extra(
    module: str, framework: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the framework not importable, importing the integration raises ConfigurationError."""
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, framework, None)  # import machinery: "not installed"
    with pytest.raises(ConfigurationError) as caught:
        importlib.import_module(module)
    assert f"wflo-prefect[{extra}]" in str(caught.value)
    assert caught.value.value == framework


def test_integrations_are_not_imported_with_wflo() -> None:
    """Importing wflo_prefect (and its governed decorators) loads no agent framework."""
    import subprocess

    code = (
        "import sys, wflo_prefect; from wflo_prefect import governed_flow; "
        "print(sorted(m for m in ('pydantic_ai', 'litellm', 'langchain_core') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
