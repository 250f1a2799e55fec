"""Opt-in response caching for instrumented clients.

An identical request (same provider, endpoint and body: model, parameters,
messages) within the TTL is answered from the cache, without a network call. The
ledger records the call as ``cached`` with cost 0 and the money it saved. Only
complete (non-streamed) responses are cached, in this process's memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from wflo_prefect.errors import InvalidArgumentError

__all__ = ["CachedResponse", "ResponseCache"]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A cached response and what the original call cost."""

    result: Any
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: Decimal
    stored_at: float


class ResponseCache:
    """An in-memory LRU cache of LLM responses with a time to live.

    Args:
        ttl_seconds: how long a response may be reused.
        max_entries: the most responses kept (least recently used go first).
        clock: the time source (seconds); for tests.
    """

    def __init__(
        self,
        ttl_seconds: float = 300,
        max_entries: int = 1000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries < 1:
            raise InvalidArgumentError(
                "ResponseCache needs ttl_seconds > 0 and max_entries >= 1",
                value={"ttl_seconds": ttl_seconds, "max_entries": max_entries},
                hint="e.g. ResponseCache(ttl_seconds=300, max_entries=1000)",
                docs="costs.md#caching",
            )
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(provider: str, url: str, body: dict[str, Any]) -> str:
        """The cache key of a request: a digest of provider, endpoint and canonical body."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(f"{provider}\n{url}\n{canonical}".encode()).hexdigest()

    def get(self, key: str) -> CachedResponse | None:
        """A fresh cached response for ``key`` (a copy of its result), or ``None``."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if self._clock() - found.stored_at > self.ttl_seconds:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return CachedResponse(
            copy.deepcopy(found.result),
            found.model,
            found.input_tokens,
            found.output_tokens,
            found.cached_input_tokens,
            found.cost_usd,
            found.stored_at,
        )

    def put(
        self,
        key: str,
        result: Any,
        *,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        cost_usd: Decimal,
    ) -> None:
        """Keep a response for reuse."""
        entry = CachedResponse(
            copy.deepcopy(result),
            model,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cost_usd,
            self._clock(),
        )
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
