"""The public namespace is exactly what ``__all__`` says (as in httpx)."""

from __future__ import annotations

import wflo_prefect


def test_all_names_are_exported() -> None:
    """Every name in ``__all__`` is importable from the package."""
    for name in wflo_prefect.__all__:
        assert hasattr(wflo_prefect, name), name


def test_public_members_are_in_all() -> None:
    """Every public attribute of the package (bar sub-modules) is listed in ``__all__``."""
    import types

    for name in wflo_prefect.__all__:  # names are imported lazily: load them all first
        getattr(wflo_prefect, name)
    public = {
        name
        for name, value in vars(wflo_prefect).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(wflo_prefect.__all__) - {"__version__"}


def test_all_is_sorted() -> None:
    """``__all__`` is kept sorted so additions are easy to review."""
    assert list(wflo_prefect.__all__) == sorted(wflo_prefect.__all__)


def test_every_exported_error_derives_from_wflo_error() -> None:
    """One exception root: every exception class the package exports is a WfloError."""
    for name in wflo_prefect.__all__:
        value = getattr(wflo_prefect, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, wflo_prefect.WfloError), name


def test_unknown_names_raise_attribute_error() -> None:
    """A name the package does not export raises AttributeError naming it."""
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        wflo_prefect.no_such_name  # noqa: B018


def test_importing_the_package_does_not_import_prefect() -> None:
    """``import wflo_prefect`` stays cheap: Prefect, SQLAlchemy and Docker load on first use."""
    import subprocess
    import sys

    script = (
        "import sys, wflo_prefect\n"
        "print(sorted(m for m in ('prefect', 'sqlalchemy', 'docker') if m in sys.modules))\n"
        "wflo_prefect.governed_flow\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["[]", "True"]


def test_every_lazy_name_is_public() -> None:
    """The lazy import table names exactly the public names (no hidden or missing ones)."""
    assert set(wflo_prefect._SOURCES) == set(wflo_prefect.__all__) - {"__version__"}
