"""Pydantic validation failures as the package's own errors.

Every public model and block is built by users; a mistake in its arguments must be a
:class:`~wflo_prefect.errors.WfloError` naming the field, the value and the fix, never
pydantic's raw ``ValidationError``. :class:`ValidatedModel` is the mixin that does it
(first in the bases, before ``BaseModel`` or Prefect's ``Block``), and
:func:`usage_error` the one conversion every model uses.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

from wflo_prefect.errors import InvalidArgumentError, WfloError

__all__ = ["ValidatedModel", "usage_error"]


def usage_error(
    where: str,
    exc: ValidationError,
    *,
    docs: str | None = None,
    hints: dict[str, str] | None = None,
    error: type[WfloError] = InvalidArgumentError,
) -> WfloError:
    """The package's error for a validation failure of ``where`` (e.g. ``"Notify"``).

    A WfloError raised by one of the model's own validators comes back as raised;
    otherwise the first failing field is named with its value, pydantic's reason and,
    from ``hints`` (by top-level field name), what to do.
    """
    failures = exc.errors()
    for failure in failures:
        own = (failure.get("ctx") or {}).get("error")
        if isinstance(own, WfloError):
            return own
    first = failures[0]
    location = tuple(str(part) for part in first.get("loc", ()))
    field = ".".join(location)
    hint = (hints or {}).get(location[0] if location else "", "")
    more = f" ({len(failures) - 1} more problem(s) after this one)" if len(failures) > 1 else ""
    if first.get("type") == "missing":  # its "input" is the whole argument set: not shown
        return error(
            f"{where} needs `{field}`{more}",
            hint=hint or f"Pass `{field}=`",
            docs=docs,
        )
    return error(
        f"{where}({field}=...) is invalid: {first['msg']}{more}"
        if field
        else f"{where}: {first['msg']}",
        value=first.get("input"),
        hint=hint or f"Fix `{field or where}`",
        docs=docs,
    )


class ValidatedModel:
    """Mixin: a model or block whose bad arguments raise :func:`usage_error`'s error."""

    #: The docs page a mistake in this model points to.
    wflo_docs: ClassVar[str | None] = None
    #: What to do, by field name.
    wflo_hints: ClassVar[dict[str, str]] = {}
    #: The error raised (settings raise ConfigurationError).
    wflo_error: ClassVar[type[WfloError]] = InvalidArgumentError

    def __init__(self, *args: Any, **data: Any) -> None:
        try:
            super().__init__(*args, **data)
        except ValidationError as exc:
            cls = type(self)
            raise usage_error(
                cls.__name__, exc, docs=cls.wflo_docs, hints=cls.wflo_hints, error=cls.wflo_error
            ) from None
