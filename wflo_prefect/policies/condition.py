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

__all__ = ["CompiledCondition", "compile_condition", "to_cel"]

_WORDS = {"and": "&&", "or": "||", "not": "!"}
# A string literal (single, double, raw or triple quoted) or a word.
_TOKEN = re.compile(
    r"""(?P<str>[rRbB]*('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"))"""
    r"""|(?P<word>\b[A-Za-z_][A-Za-z0-9_]*\b)""",
    re.S,
)
# Names bound by CEL's comprehension macros, e.g. the `t` in `tags.exists(t, ...)`.
_MACRO_VAR = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")


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
    """A condition compiled to a CEL program, checked against the names it may use."""

    def __init__(self, source: str, program: Any, variables: frozenset[str]) -> None:
        self.source = source
        self._program = program
        self.variables = variables

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True when the condition holds for ``context``; a non-boolean result is an error."""
        try:
            result = self._program.execute(dict(context))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise WfloRuntimeError(
                f"Policy condition {self.source!r} could not be evaluated: {exc}",
                hint="Check the types of the names it compares",
                docs="policies.md",
            ) from exc
        if not isinstance(result, bool):
            raise WfloRuntimeError(
                f"Policy condition {self.source!r} must be true or false",
                value=result,
                hint="Compare values (e.g. `cost > 10`) instead of returning one",
                docs="policies.md",
            )
        return result


def compile_condition(condition: str, allowed: Iterable[str]) -> CompiledCondition:
    """Compile ``condition``; refuse syntax errors and names outside ``allowed``."""
    if not isinstance(condition, str) or not condition.strip():
        raise InvalidArgumentError(
            "A policy condition must be a non-empty CEL expression",
            value=condition,
            hint="e.g. \"cost > 100 || operation == 'delete'\", or '*' for always",
            docs="policies.md",
        )
    source = to_cel(condition)
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise InvalidArgumentError(
            "The policy condition is not valid CEL",
            value=condition,
            hint=str(exc).split("\n", 1)[0],
            docs="policies.md",
        ) from exc
    bound = set(_MACRO_VAR.findall(source))
    allowed_names = set(allowed)
    unknown = sorted(set(program.variables()) - allowed_names - bound)
    if unknown:
        raise InvalidArgumentError(
            f"The policy condition uses unknown names {unknown}",
            value=condition,
            hint=f"Conditions can use: {', '.join(sorted(allowed_names))}",
            docs="policies.md",
        )
    return CompiledCondition(condition, program, frozenset(program.variables()) - bound)
