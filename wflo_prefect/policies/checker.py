"""Type-check a policy condition before it can ever run.

The ``cel`` package compiles CEL but does not type-check it: a call to a function
that does not exist (``__import__('os')``), a field a value does not have
(``operation.__class__``) or an operation on the wrong types (``cost + 1``, a
double plus an int) would only fail when the policy is evaluated, in the middle
of a run. This module parses the condition (CEL's grammar, plus the ``AND`` /
``OR`` / ``NOT`` words) and infers the type of every sub-expression against the
declared types of the names (:mod:`wflo_prefect.policies.variables`), so those
mistakes are refused when the ``Policy`` is built, with the position and text.

It only reads the text; nothing is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wflo_prefect.policies.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    NUMBERS,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    ListType,
    MapType,
    Prim,
    Record,
)

__all__ = ["FUNCTIONS", "CheckError", "check"]

TYPE_VALUE = Prim("type")
_TYPE_NAMES = ("int", "uint", "double", "string", "bytes", "bool", "list", "map", "null_type")
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
    |(?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
    """,
    re.S | re.X,
)
_RELATIONS = {"==", "!=", "<", "<=", ">", ">=", "in"}
_STRING_METHODS = {"contains", "startsWith", "endsWith", "matches"}
_TIME_METHODS = {
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "getDayOfYear",
    "getDayOfWeek",
    "getDate",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
}
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_CONVERSIONS: dict[str, CelType] = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "timestamp": TIMESTAMP,
    "duration": DURATION,
    "dyn": DYN,
    "type": TYPE_VALUE,
}
_METHODS = _STRING_METHODS | _TIME_METHODS | _MACROS | {"size"}
#: Every function a checked condition may call (the macros expand to operators).
FUNCTIONS = frozenset(_METHODS | set(_CONVERSIONS) | {"has"})


class CheckError(Exception):
    """A mistake in a condition, at ``position`` (0-based offset) covering ``text``."""

    def __init__(self, message: str, position: int, text: str) -> None:
        super().__init__(message, position, text)
        self.message = message
        self.position = position
        self.text = text


@dataclass(frozen=True)
class _Tok:
    kind: str  # "str", "num", "ident", "op", "end"
    text: str
    pos: int


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise CheckError("unexpected character", pos, source[pos])
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind == "ident" and text.lower() in _WORD_OPS:
            kind, text = "op", _WORD_OPS[text.lower()]
        if kind != "ws":
            out.append(_Tok(kind, text, pos))
        pos = match.end()
    out.append(_Tok("end", "", len(source)))
    return out


@dataclass(frozen=True)
class _Typed:
    type: CelType
    start: int
    end: int
    select: bool = False  # a field selection, the argument `has()` needs


def _is(t: CelType, *allowed: CelType) -> bool:
    return t == DYN or t in allowed


def _comparable(a: CelType, b: CelType) -> bool:
    if DYN in (a, b) or NULL in (a, b) or a == b:
        return True
    if a in NUMBERS and b in NUMBERS:
        return True
    if isinstance(a, ListType) and isinstance(b, ListType):
        return _comparable(a.elem, b.elem)
    maps = (MapType, Record)
    return isinstance(a, maps) and isinstance(b, maps)


def _join(a: CelType, b: CelType) -> CelType:
    if a == b:
        return a
    if a == NULL:
        return b
    if b == NULL:
        return a
    return DYN


class _Checker:
    def __init__(self, source: str, names: Mapping[str, CelType]) -> None:
        self.source = source
        self.names = names
        self.toks = _tokens(source)
        self.i = 0
        self.scopes: list[dict[str, CelType]] = []
        self.used: set[str] = set()

    # -- helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        if self.tok.text != text or self.tok.kind not in ("op", "ident"):
            raise CheckError(f"expected {text!r}", self.tok.pos, self.tok.text or "end of text")
        return self.take()

    def fail(self, message: str, start: int, end: int) -> CheckError:
        return CheckError(message, start, self.source[start:end])

    # -- grammar ------------------------------------------------------------------------
    def expr(self) -> _Typed:
        cond = self.binary(0)
        if self.tok.text != "?" or self.tok.kind != "op":
            return cond
        self.take()
        if not _is(cond.type, BOOL):
            raise self.fail(
                f"the condition of ?: must be a bool, not {cond.type}", cond.start, cond.end
            )
        yes = self.binary(0)
        self.expect(":")
        no = self.expr()
        return _Typed(_join(yes.type, no.type), cond.start, no.end)

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        frozenset(_RELATIONS),
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> _Typed:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.tok.kind in ("op", "ident") and self.tok.text in self._LEVELS[level]:
            op = self.take().text
            right = self.binary(level + 1)
            left = _Typed(self.operator(op, left, right), left.start, right.end)
        return left

    def operator(self, op: str, left: _Typed, right: _Typed) -> CelType:
        a, b = left.type, right.type
        start, end = left.start, right.end

        def wrong() -> CheckError:
            return self.fail(f"{op!r} is not defined for {a} and {b}", start, end)

        if op in ("&&", "||"):
            for side in (left, right):
                if not _is(side.type, BOOL):
                    raise self.fail(f"{op!r} needs bools, not {side.type}", side.start, side.end)
            return BOOL
        if op in ("==", "!="):
            if not _comparable(a, b):
                raise self.fail(f"comparing {a} with {b} is always false", start, end)
            return BOOL
        if op == "in":
            if isinstance(b, ListType):
                elem = b.elem
            elif isinstance(b, MapType):
                elem = b.key
            elif isinstance(b, Record):
                elem = STRING
            elif b == DYN:
                elem = DYN
            else:
                raise self.fail(f"'in' needs a list or a map on the right, not {b}", start, end)
            if not _comparable(a, elem):
                raise wrong()
            return BOOL
        if op in _RELATIONS:
            if DYN in (a, b) or (a in NUMBERS and b in NUMBERS):
                return BOOL
            if a == b and a in (STRING, BYTES, BOOL, TIMESTAMP, DURATION):
                return BOOL
            raise wrong()
        if DYN in (a, b):
            return DYN
        if op == "+" and a == b and (a in (INT, UINT, DOUBLE, STRING, BYTES, DURATION)):
            return a
        if op == "+" and isinstance(a, ListType) and isinstance(b, ListType):
            return ListType(_join(a.elem, b.elem))
        if op == "+" and {a, b} == {TIMESTAMP, DURATION}:
            return TIMESTAMP
        if op == "-" and a == b and a in (INT, UINT, DOUBLE, DURATION):
            return a
        if op == "-" and a == TIMESTAMP and b in (TIMESTAMP, DURATION):
            return DURATION if b == TIMESTAMP else TIMESTAMP
        if op in ("*", "/") and a == b and a in NUMBERS:
            return a
        if op == "%" and a == b and a in (INT, UINT):
            return a
        if a in NUMBERS and b in NUMBERS:
            raise self.fail(
                f"{op!r} does not mix {a} and {b}; convert one side, e.g. double(x)", start, end
            )
        raise wrong()

    def unary(self) -> _Typed:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("!", "-"):
            self.take()
            inner = self.unary()
            if tok.text == "!" and not _is(inner.type, BOOL):
                raise self.fail(f"'!' needs a bool, not {inner.type}", tok.pos, inner.end)
            if tok.text == "-" and not _is(inner.type, INT, DOUBLE, DURATION):
                raise self.fail(f"'-' needs a number, not {inner.type}", tok.pos, inner.end)
            return _Typed(inner.type if tok.text == "-" else BOOL, tok.pos, inner.end)
        return self.member(self.primary())

    def member(self, value: _Typed) -> _Typed:
        while self.tok.kind == "op" and self.tok.text in (".", "["):
            if self.take().text == "[":
                index = self.expr()
                close = self.expect("]")
                value = _Typed(self.index(value, index), value.start, close.pos + 1)
                continue
            name = self.take()
            if name.kind != "ident":
                raise CheckError("expected a field or method name", name.pos, name.text)
            if self.tok.text == "(" and self.tok.kind == "op":
                value = self.method(value, name)
            else:
                end = name.pos + len(name.text)
                value = _Typed(self.field(value, name.text, end), value.start, end, select=True)
        return value

    def field(self, value: _Typed, name: str, end: int) -> CelType:
        t = value.type
        if isinstance(t, Record):
            if name not in t.fields:
                raise self.fail(
                    f"{t} has no field {name!r}; its fields are {', '.join(sorted(t.fields))}",
                    value.start,
                    end,
                )
            return t.fields[name]
        if isinstance(t, MapType) and _is(t.key, STRING):
            return t.value
        if t == DYN:
            return DYN
        receiver = self.source[value.start : value.end]
        raise self.fail(f"{receiver} is a {t}, which has no field {name!r}", value.start, end)

    def index(self, value: _Typed, index: _Typed) -> CelType:
        t, k = value.type, index.type
        end = index.end + 1
        if isinstance(t, ListType) and _is(k, INT, UINT):
            return t.elem
        if isinstance(t, MapType) and _comparable(t.key, k):
            return t.value
        if isinstance(t, Record) and _is(k, STRING):
            literal = self.source[index.start : index.end]
            key = literal[1:-1] if literal[:1] in "'\"" and literal[-1:] == literal[:1] else None
            if key is not None:
                return self.field(value, key, end)
            return DYN
        if t == DYN:
            return DYN
        raise self.fail(f"a {t} cannot be indexed by a {k}", value.start, end)

    def arguments(self) -> tuple[list[_Typed], int]:
        self.expect("(")
        args: list[_Typed] = []
        while not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.expr())
            if self.tok.text == "," and self.tok.kind == "op":
                self.take()
            elif self.tok.text != ")":
                raise CheckError("expected ',' or ')'", self.tok.pos, self.tok.text or "end")
        return args, self.take().pos + 1

    def method(self, recv: _Typed, name: _Tok) -> _Typed:
        t = recv.type
        if name.text not in _METHODS:
            raise self.fail(
                f"unknown function {name.text!r}", recv.start, name.pos + len(name.text)
            )
        if name.text in _MACROS:
            return self.macro(recv, name)
        args, end = self.arguments()
        typed = (
            (name.text in _STRING_METHODS and _is(t, STRING))
            or (name.text in _TIME_METHODS and _is(t, TIMESTAMP, DURATION))
            or (
                name.text == "size"
                and (_is(t, STRING, BYTES) or isinstance(t, ListType | MapType | Record))
            )
        )
        if not typed:
            raise self.fail(f"{name.text}() is not defined on a {t}", recv.start, end)
        if name.text in _STRING_METHODS:
            if len(args) != 1 or not _is(args[0].type, STRING):
                raise self.fail(f"{name.text}() takes one string", recv.start, end)
            return _Typed(BOOL, recv.start, end)
        return _Typed(INT, recv.start, end)

    def macro(self, recv: _Typed, name: _Tok) -> _Typed:
        t = recv.type
        if isinstance(t, ListType):
            elem = t.elem
        elif isinstance(t, MapType):
            elem = t.key
        elif isinstance(t, Record):
            elem = STRING
        elif t == DYN:
            elem = DYN
        else:
            raise self.fail(
                f"{name.text}() needs a list or a map, not {t}", recv.start, self.tok.pos
            )
        self.expect("(")
        var = self.take()
        if var.kind != "ident":
            raise CheckError(f"{name.text}() needs a variable name first", var.pos, var.text)
        self.scopes.append({var.text: elem})
        try:
            parts: list[_Typed] = []
            while self.tok.text == "," and self.tok.kind == "op":
                self.take()
                parts.append(self.expr())
            close = self.expect(")")
        finally:
            self.scopes.pop()
        end = close.pos + 1
        arity = (1, 2) if name.text == "map" else (1,)
        if len(parts) not in arity:
            raise self.fail(
                f"{name.text}() takes a variable name and {' or '.join(map(str, arity))} "
                "expression(s)",
                recv.start,
                end,
            )
        if name.text != "map" or len(parts) == 2:
            pred = parts[0]
            if not _is(pred.type, BOOL):
                raise self.fail(
                    f"the predicate of {name.text}() must be a bool", pred.start, pred.end
                )
        if name.text == "map":
            return _Typed(ListType(parts[-1].type), recv.start, end)
        if name.text == "filter":
            return _Typed(ListType(elem), recv.start, end)
        return _Typed(BOOL, recv.start, end)

    def primary(self) -> _Typed:
        tok = self.take()
        end = tok.pos + len(tok.text)
        if tok.kind == "num":
            text = tok.text.lower()
            if text.endswith("u"):
                return _Typed(UINT, tok.pos, end)
            is_double = not text.startswith("0x") and any(c in text for c in ".e")
            return _Typed(DOUBLE if is_double else INT, tok.pos, end)
        if tok.kind == "str":
            return _Typed(BYTES if tok.text[:2].lower().count("b") else STRING, tok.pos, end)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr()
            close = self.expect(")")
            return _Typed(inner.type, tok.pos, close.pos + 1)
        if tok.kind == "op" and tok.text == "[":
            return self.list_literal(tok)
        if tok.kind == "op" and tok.text == "{":
            return self.map_literal(tok)
        if tok.kind == "op" and tok.text == "." and self.tok.kind == "ident":
            tok = self.take()  # `.name`: the name from the root scope
            end = tok.pos + len(tok.text)
        if tok.kind != "ident":
            raise CheckError("expected a value", tok.pos, tok.text or "end of text")
        if tok.text in ("true", "false"):
            return _Typed(BOOL, tok.pos, end)
        if tok.text == "null":
            return _Typed(NULL, tok.pos, end)
        if self.tok.kind == "op" and self.tok.text == "(":
            return self.call(tok)
        for scope in reversed(self.scopes):
            if tok.text in scope:
                return _Typed(scope[tok.text], tok.pos, end)
        if tok.text in self.names:
            self.used.add(tok.text)
            return _Typed(self.names[tok.text], tok.pos, end)
        if tok.text in _TYPE_NAMES:
            return _Typed(TYPE_VALUE, tok.pos, end)
        raise CheckError(
            f"unknown name {tok.text!r}; conditions can use {', '.join(sorted(self.names))}",
            tok.pos,
            tok.text,
        )

    def call(self, name: _Tok) -> _Typed:
        if name.text == "has":
            args, end = self.arguments()
            if len(args) != 1 or not args[0].select:
                raise self.fail(
                    "has() takes one field selection, e.g. has(params.x)", name.pos, end
                )
            return _Typed(BOOL, name.pos, end)
        if name.text == "size":
            args, end = self.arguments()
            if len(args) != 1:
                raise self.fail("size() takes one argument", name.pos, end)
            recv = args[0]
            if not (
                _is(recv.type, STRING, BYTES) or isinstance(recv.type, ListType | MapType | Record)
            ):
                raise self.fail(f"size() is not defined on a {recv.type}", name.pos, end)
            return _Typed(INT, name.pos, end)
        if name.text in _CONVERSIONS:
            args, end = self.arguments()
            if len(args) != 1:
                raise self.fail(f"{name.text}() takes one argument", name.pos, end)
            return _Typed(_CONVERSIONS[name.text], name.pos, end)
        raise CheckError(f"unknown function {name.text!r}", name.pos, name.text)

    def list_literal(self, open_: _Tok) -> _Typed:
        elem: CelType | None = None
        while not (self.tok.kind == "op" and self.tok.text == "]"):
            item = self.expr()
            elem = item.type if elem is None else _join(elem, item.type)
            if self.tok.text == "," and self.tok.kind == "op":
                self.take()
            elif self.tok.text != "]":
                raise CheckError("expected ',' or ']'", self.tok.pos, self.tok.text or "end")
        close = self.take()
        return _Typed(ListType(elem or DYN), open_.pos, close.pos + 1)

    def map_literal(self, open_: _Tok) -> _Typed:
        key: CelType | None = None
        value: CelType | None = None
        while not (self.tok.kind == "op" and self.tok.text == "}"):
            k = self.expr()
            self.expect(":")
            v = self.expr()
            key = k.type if key is None else _join(key, k.type)
            value = v.type if value is None else _join(value, v.type)
            if self.tok.text == "," and self.tok.kind == "op":
                self.take()
            elif self.tok.text != "}":
                raise CheckError("expected ',' or '}'", self.tok.pos, self.tok.text or "end")
        close = self.take()
        return _Typed(MapType(key or DYN, value or DYN), open_.pos, close.pos + 1)


def check(source: str, names: Mapping[str, CelType]) -> frozenset[str]:
    """The names ``source`` uses; :class:`CheckError` at its first mistake."""
    if source.strip() == "*":
        return frozenset()
    checker = _Checker(source, names)
    result = checker.expr()
    if checker.tok.kind != "end":
        raise CheckError("unexpected text after the expression", checker.tok.pos, checker.tok.text)
    if not _is(result.type, BOOL):
        raise CheckError(
            f"a condition must be true or false, this is a {result.type}", 0, source.strip()
        )
    return frozenset(checker.used)
