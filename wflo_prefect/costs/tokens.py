"""Token counts for the pre-call hold: an upper bound of what the provider will bill.

OpenAI models are counted exactly, offline, with their own vocabulary (``o200k_base``
for GPT-4o, GPT-4.1, GPT-5 and the o-series; ``cl100k_base`` for GPT-4, GPT-3.5 and
the ``text-embedding-3`` models) through ``quicktok``, whose wheel ships the
vocabularies (nothing is downloaded). Each piece of text is counted on its own and
given :data:`PIECE_OVERHEAD` tokens for the role and separator tokens the API adds.

For a provider whose tokenizer is not published (Anthropic, Google, Cohere...), the
count is the larger of

* :data:`UNKNOWN_MARGIN` times the most token-hungry of the four real BPE
  vocabularies shipped (``o200k``, ``cl100k``, Llama-3, Qwen), and
* a per-script floor: every non-ASCII character one token, ASCII text one token
  per :data:`ASCII_CHARS_PER_TOKEN` characters.

That is a conservative estimate, not a proof: see ``docs/costs.md#the-hold-guarantee``.
Without ``quicktok`` (a platform it has no wheel for) every count falls back to the
per-script floor times :data:`UNKNOWN_MARGIN`.
"""

from __future__ import annotations

import math
import threading
from typing import Any

__all__ = [
    "ASCII_CHARS_PER_TOKEN",
    "PIECE_OVERHEAD",
    "UNKNOWN_MARGIN",
    "encoding_for",
    "exact_tokenizer",
    "script_floor",
    "text_tokens",
    "warm_up",
]

#: Tokens added per piece of text (a message's role and separators: OpenAI documents 3-4).
PIECE_OVERHEAD = 4
#: Margin on the shipped vocabularies' count for a tokenizer that is not published.
UNKNOWN_MARGIN = 1.3
#: ASCII characters per token assumed by the per-script floor (English is ~4).
ASCII_CHARS_PER_TOKEN = 3

_O200K_PREFIXES = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "chatgpt-4o",
    "gpt-oss",
)
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada-002")
_SHIPPED = ("o200k_base", "cl100k_base", "llama3", "qwen3")
_lock = threading.Lock()


def encoding_for(provider: str, model: str) -> str | None:
    """The vocabulary ``provider``'s ``model`` bills with, when it ships offline."""
    if provider.lower() not in ("openai", "azure"):
        return None
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


_loaded: dict[str, Any] = {}


def _encoding(name: str) -> Any:
    """The vocabulary ``name``, loaded once per process (~1 s); concurrent first
    callers wait for the one loading it."""
    found = _loaded.get(name, _loaded)
    if found is not _loaded:
        return found
    with _lock:
        if name not in _loaded:
            try:
                import quicktok
            except ImportError:
                _loaded[name] = None
            else:
                _loaded[name] = quicktok.get_encoding(name)
        return _loaded[name]


def warm_up(provider: str) -> threading.Thread | None:
    """Load the vocabularies ``provider``'s calls are counted with, in the background
    (called by ``instrument()``, so the first call does not wait ~1 s for them);
    the loading thread, or ``None`` when they are loaded already."""
    names = ("o200k_base", "cl100k_base") if provider.lower() in ("openai", "azure") else _SHIPPED
    if all(n in _loaded for n in names):
        return None

    def load() -> None:
        for name in names:
            _encoding(name)

    thread = threading.Thread(target=load, name="wflo-vocabularies", daemon=True)
    thread.start()
    return thread


def exact_tokenizer(name: str) -> Any:
    """The shipped vocabulary ``name`` (``None`` when ``quicktok`` is not installed)."""
    return _encoding(name)


def script_floor(text: str) -> int:
    """Every non-ASCII character one token, ASCII one per ``ASCII_CHARS_PER_TOKEN`` chars."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return (len(text) - ascii_chars) + math.ceil(ascii_chars / ASCII_CHARS_PER_TOKEN)


def text_tokens(text: str, provider: str, model: str) -> int:
    """Tokens ``text`` is billed as by ``provider``'s ``model`` at most (see the module)."""
    if not text:
        return 0
    name = encoding_for(provider, model)
    if name is not None:
        exact = _encoding(name)
        if exact is not None:
            return int(exact.count(text))
    counts = [int(enc.count(text)) for n in _SHIPPED if (enc := _encoding(n)) is not None]
    # Without the vocabularies: the floor, with the margin.
    hungriest = max(counts) if counts else script_floor(text)
    return max(script_floor(text), math.ceil(hungriest * UNKNOWN_MARGIN))
