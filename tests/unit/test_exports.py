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
