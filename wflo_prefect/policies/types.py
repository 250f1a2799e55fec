"""The CEL types the condition checker reasons about.

A small model of CEL's type system: primitives, ``list(T)``, ``map(K, V)``,
``dyn`` (anything, checked when evaluated), and records with named fields
(``sandbox``, ``workflow``) whose unknown fields are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "DYN",
    "INT",
    "NULL",
    "NUMBERS",
    "STRING",
    "TIMESTAMP",
    "UINT",
    "CelType",
    "ListType",
    "MapType",
    "Prim",
    "Record",
]


@dataclass(frozen=True)
class Prim:
    """A primitive CEL type, ``dyn`` or ``null``."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ListType:
    """``list(elem)``."""

    elem: CelType

    def __str__(self) -> str:
        return f"list({self.elem})"


@dataclass(frozen=True)
class MapType:
    """``map(key, value)``."""

    key: CelType
    value: CelType

    def __str__(self) -> str:
        return f"map({self.key}, {self.value})"


@dataclass(frozen=True)
class Record:
    """A map with known fields: any other field is an error when the policy is built."""

    name: str
    fields: Mapping[str, CelType] = field(hash=False, compare=False)

    def __str__(self) -> str:
        return self.name


CelType = Prim | ListType | MapType | Record

BOOL = Prim("bool")
INT = Prim("int")
UINT = Prim("uint")
DOUBLE = Prim("double")
STRING = Prim("string")
BYTES = Prim("bytes")
NULL = Prim("null")
DYN = Prim("dyn")
TIMESTAMP = Prim("timestamp")
DURATION = Prim("duration")
NUMBERS = frozenset({INT, UINT, DOUBLE})
