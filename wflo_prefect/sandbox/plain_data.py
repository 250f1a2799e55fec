"""Plain data as tagged JSON: how results come back out of the sandbox.

Standard library only: this file is also copied into the sandbox, where the task
runner encodes the task's result with it. Results are never unpickled on the host,
because unpickling lets the data's author run code in the unpickling process, and
the author here is untrusted code. So a sandboxed task returns plain data: None,
bool, int, float, str, bytes, list, tuple, set, frozenset, dict, Decimal, datetime,
date and UUID, nested freely.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import uuid
from typing import Any

__all__ = ["MAX_DEPTH", "UnsupportedValue", "decode", "decode_value", "encode"]

#: How deeply plain data may nest.
MAX_DEPTH = 100


class UnsupportedValue(TypeError):
    """A value (at ``path``) is not plain data."""

    def __init__(self, path: str, value: object) -> None:
        self.path = path
        self.type_name = type(value).__qualname__
        super().__init__(f"{path} is a {self.type_name}, which is not plain data")


def _to_json(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UnsupportedValue(path, value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return (
            value
            if value == value and value not in (float("inf"), float("-inf"))
            else {"$float": repr(value)}
        )
    if isinstance(value, list):
        return [_to_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, (tuple, set, frozenset)):
        tag = {tuple: "$tuple", set: "$set", frozenset: "$frozenset"}[type(value)]
        items = value if isinstance(value, tuple) else sorted(value, key=repr)
        return {tag: [_to_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(items)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _to_json(v, f"{path}[{k!r}]", depth + 1) for k, v in value.items()}
        return {
            "$dict": [
                [_to_json(k, f"{path}.key", depth + 1), _to_json(v, f"{path}[{k!r}]", depth + 1)]
                for k, v in value.items()
            ]
        }
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    raise UnsupportedValue(path, value)


def encode(value: Any) -> bytes:
    """Tagged JSON of ``value``; raises :class:`UnsupportedValue` for anything else."""
    return json.dumps(_to_json(value, "result", 0)).encode()


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$tuple":
            return tuple(_from_json(v) for v in inner)
        if tag == "$set":
            return {_from_json(v) for v in inner}
        if tag == "$frozenset":
            return frozenset(_from_json(v) for v in inner)
        if tag == "$dict":
            return {_from_json(k): _from_json(v) for k, v in inner}
        if tag == "$bytes":
            return base64.b64decode(inner)
        if tag == "$decimal":
            return decimal.Decimal(inner)
        if tag == "$datetime":
            return datetime.datetime.fromisoformat(inner)
        if tag == "$date":
            return datetime.date.fromisoformat(inner)
        if tag == "$uuid":
            return uuid.UUID(inner)
        if tag == "$float":
            return float(inner)
    return {k: _from_json(v) for k, v in value.items()}


def decode_value(value: Any) -> Any:
    """The value whose tagged JSON, already parsed, is ``value``."""
    return _from_json(value)


def decode(data: bytes) -> Any:
    """The value :func:`encode` encoded (only data: decoding never runs code)."""
    return _from_json(json.loads(data))
