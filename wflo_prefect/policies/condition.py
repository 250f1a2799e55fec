"""Policy conditions: CEL expressions, compiled once, never ``eval``.

Conditions are `CEL <https://cel.dev>`_ evaluated by the ``cel`` module of the
``common-expression-language`` package (a Rust implementation). For readability
the words ``AND``, ``OR`` and ``NOT`` (any case) are accepted for ``&&``, ``||``
and ``!`` outside string literals, and ``*`` alone means "always", so the
product's examples (``cost > 100 OR operation == 'delete'``) read as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import cel

from wflo_prefect.errors import InvalidArgumentError, WfloRuntimeError
from wflo_prefect.policies.checker import FUNCTIONS as _FUNCTIONS
from wflo_prefect.policies.checker import CheckError, check
from wflo_prefect.policies.errors import PolicyConditionError
from wflo_prefect.policies.types import CelType

__all__ = ["CompiledCondition", "cel_context", "compile_condition", "to_cel", "used_names"]

_WORDS = {"and": "&&", "or": "||", "not": "!"}
# A string literal (single, double, raw or triple quoted) or a word.
_TOKEN = re.compile(
    r"""(?P<str>[rRbB]*('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"))"""
    r"""|(?P<word>\b[A-Za-z_][A-Za-z0-9_]*\b)""",
    re.S,
)


def to_cel(condition: str) -> str:
    """Rewrite the AND / OR / NOT words and a lone ``*`` into CEL."""
    if condition.strip() == "*":
        return "true"

    def replace(match: re.Match[str]) -> str:
        word = match.group("word")
        if word is not None and word.lower() in _WORDS:
            return f" {_WORDS[word.lower()]} "
        return match.group(0)

    return _TOKEN.sub(replace, condition)


class CompiledCondition:
    """A condition compiled to a CEL program, type-checked against the names it may use."""

    def __init__(self, source: str, program: Any, variables: frozenset[str]) -> None:
        self.source = source
        self._program = program
        self.variables = variables

    def evaluate(self, context: Mapping[str, Any] | cel.Context) -> bool:
        """True when the condition holds for ``context``; a non-boolean result is an error.

        ``context`` is a mapping of the names, or a ``cel.Context`` built once from
        them (see :func:`cel_context`) when many conditions are decided together.
        """
        try:
            values = context if isinstance(context, cel.Context) else dict(context)
            result = self._program.execute(values)
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise WfloRuntimeError(
                f"Policy condition {self.source!r} could not be evaluated: {exc}",
                hint="Check the types of the names it compares",
                docs="policies.md",
            ) from exc
        if result is True or result is False:
            return result
        raise WfloRuntimeError(
            f"Policy condition {self.source!r} must be true or false",
            value=result,
            hint="Compare values (e.g. `cost > 10`) instead of returning one",
            docs="policies.md",
        )


def cel_context(context: Mapping[str, Any], names: Iterable[str]) -> cel.Context:
    """``names`` of ``context`` converted to CEL values once, for many conditions."""
    return cel.Context({name: context[name] for name in names if name in context})


def used_names(condition: str, types: Mapping[str, CelType]) -> frozenset[str]:
    """The names ``condition`` uses, after checking it against ``types``."""
    if not isinstance(condition, str) or not condition.strip():
        raise InvalidArgumentError(
            "A policy condition must be a non-empty CEL expression",
            value=condition,
            hint="e.g. \"cost > 100 || operation == 'delete'\", or '*' for always",
            docs="policies.md",
        )
    try:
        return check(condition, types)
    except CheckError as exc:
        raise PolicyConditionError(
            condition, exc.message, position=exc.position + 1, text=exc.text
        ) from None


def compile_condition(condition: str, types: Mapping[str, CelType]) -> CompiledCondition:
    """Check ``condition`` against the declared ``types`` of the names, then compile it.

    Syntax errors, unknown names, functions and fields and type errors are refused
    here, with the column and the text at fault, so they never surface mid-run.
    """
    names = used_names(condition, types)
    source = to_cel(condition)
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise PolicyConditionError(
            condition, str(exc).split("\n", 1)[0], position=1, text=condition
        ) from exc
    # A second, independent line of defence: the CEL compiler's own list of calls.
    unknown = [
        f for f in program.functions() if f not in _FUNCTIONS and not f.startswith(("_", "!_", "@"))
    ]
    if unknown:
        at = condition.find(unknown[0])
        raise PolicyConditionError(
            condition,
            f"unknown function {unknown[0]!r}",
            position=max(at, 0) + 1,
            text=unknown[0],
        )
    return CompiledCondition(condition, program, names)
