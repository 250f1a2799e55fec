"""The canonical digest of what is approved: the action and its details.

A decision carries the digest it was made for; the gate accepts it only when it
equals the request's digest, so an approval of other details never applies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel

__all__ = ["canonical_details", "digest_of"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def canonical_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """``details`` as plain JSON values (Decimals and ids as strings, others as repr)."""
    result = _jsonable(dict(details or {}))
    assert isinstance(result, dict)
    return result


def digest_of(action: str, details: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{"action": ..., "details": ...}``."""
    document = {"action": action, "details": canonical_details(details)}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
