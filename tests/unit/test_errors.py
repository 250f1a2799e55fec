"""Errors say what was wrong, the value, what to do, and where to read more."""

from __future__ import annotations

import pytest

from wflo_prefect.errors import (
    ConfigurationError,
    InvalidArgumentError,
    LedgerError,
    WfloError,
    WfloRuntimeError,
    WfloUsageError,
)


def test_message_names_value_hint_and_docs() -> None:
    """The rendered message contains the bad value, the hint and the docs page."""
    err = ConfigurationError("bad port", value=99999, hint="Use 1-65535", docs="settings.md")
    text = str(err)
    assert "bad port" in text
    assert "99999" in text
    assert "Use 1-65535" in text
    assert "docs/settings.md" in text
    assert err.value == 99999


def test_value_none_is_still_quoted() -> None:
    """An explicit ``value=None`` is shown, unlike an omitted value."""
    assert "(got None)" in str(InvalidArgumentError("x", value=None))
    assert "(got" not in str(InvalidArgumentError("x"))


@pytest.mark.parametrize(
    ("cls", "branch"),
    [
        (ConfigurationError, WfloUsageError),
        (InvalidArgumentError, WfloUsageError),
        (LedgerError, WfloRuntimeError),
    ],
)
def test_tree_branches(cls: type[WfloError], branch: type[WfloError]) -> None:
    """User mistakes and run-time failures sit on separate branches under WfloError."""
    assert issubclass(cls, branch)
    assert issubclass(cls, WfloError)
    assert not (issubclass(cls, WfloUsageError) and issubclass(cls, WfloRuntimeError))


def test_usage_errors_are_value_errors() -> None:
    """Bad arguments are also ValueError, so generic handlers still catch them."""
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(ConfigurationError, ValueError)
