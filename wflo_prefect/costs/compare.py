"""The same usage priced on comparable models of other providers (``wflo costs compare``).

Models are grouped in :data:`COMPARABLE_CLASSES`, a curated table of models that
do the same kind of work at a similar level (a flagship chat model, a small fast
one, a tiny one, a reasoning model, an embedding model). The usage of one call, or
of every call of a recorded run, is priced call by call on each model of the class
with :func:`~wflo_prefect.costs.prices.find_price` (custom prices, then
genai-prices' data, then the prices wflo ships), so tiered prices apply per call as
they would have. The table is a starting point for a decision, not a benchmark of
quality: check a cheaper model on your own task before switching.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from wflo_prefect.costs.errors import UnknownModelPrice
from wflo_prefect.costs.prices import find_price, genai_provider
from wflo_prefect.costs.usage import check_usage
from wflo_prefect.errors import InvalidArgumentError

__all__ = [
    "COMPARABLE_CLASSES",
    "Comparison",
    "ComparisonRow",
    "Usage",
    "class_of",
    "compare_costs",
    "resolve_model",
]

#: Comparable classes: ``(provider, model)`` pairs, each priced in genai-prices' bundled
#: data or by wflo's shipped prices (a test checks every one has a price).
COMPARABLE_CLASSES: dict[str, tuple[tuple[str, str], ...]] = {
    "flagship": (
        ("openai", "gpt-5"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-pro"),
        ("cohere", "command-a"),
        ("mistral", "mistral-large"),
        ("deepseek", "deepseek-chat"),
        ("x-ai", "grok-3"),
    ),
    "small": (
        ("openai", "gpt-5-mini"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("google", "gemini-2.5-flash"),
        ("google", "gemini-2.0-flash"),
        ("cohere", "command-r"),
        ("mistral", "mistral-small-latest"),
        ("x-ai", "grok-3-mini"),
    ),
    "tiny": (
        ("openai", "gpt-5-nano"),
        ("openai", "gpt-4.1-nano"),
        ("google", "gemini-2.5-flash-lite"),
        ("google", "gemini-2.0-flash-lite"),
        ("cohere", "command-r7b"),
        ("mistral", "ministral-8b"),
    ),
    "reasoning": (
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-opus-4-1"),
        ("google", "gemini-2.5-pro"),
        ("deepseek", "deepseek-reasoner"),
        ("mistral", "magistral-medium"),
    ),
    "embedding": (
        ("openai", "text-embedding-3-small"),
        ("openai", "text-embedding-3-large"),
        ("google", "gemini-embedding-001"),
        ("cohere", "embed-v4.0"),
        ("cohere", "embed-english-v3.0"),
        ("mistral", "mistral-embed"),
        ("voyageai", "voyage-3.5"),
    ),
}


@dataclass(frozen=True, slots=True)
class Usage:
    """The token usage of one call (``input_tokens`` includes the cached ones)."""

    input_tokens: int
    output_tokens: int = 0
    cached_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """The cost of the usage on one model."""

    provider: str
    model: str
    cost_usd: Decimal
    #: Where the price comes from: ``genai-prices``, ``wflo`` (shipped) or ``custom``.
    source: str
    #: The model the usage was compared from.
    yours: bool = False


@dataclass(frozen=True, slots=True)
class Comparison:
    """The usage of ``provider``'s ``model`` priced on each model of ``comparable_class``."""

    provider: str
    model: str
    comparable_class: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    #: Cheapest first.
    rows: tuple[ComparisonRow, ...]
    #: Models of the class that have no price here (left out of ``rows``).
    unpriced: tuple[str, ...] = ()


def _canonical(provider: str, model: str) -> str:
    """genai-prices' id of ``model`` (``gpt-4o-2024-08-06`` -> ``gpt-4o``), else ``model``."""
    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(
            model, None, genai_provider(provider), None
        )
    except LookupError:
        return model
    return str(info.id)


def resolve_model(model: str, provider: str | None = None) -> tuple[str, str]:
    """``(provider, model)`` of ``model`` (``provider/model`` or a bare name), priced.

    Raises:
        InvalidArgumentError: the model has no price (or its provider cannot be told).
    """
    if provider is None and "/" in model:
        provider, model = model.split("/", 1)
    if provider is None:
        provider = next(
            (p for models in COMPARABLE_CLASSES.values() for p, m in models if m == model), None
        )
    if provider is None:
        from genai_prices import data_snapshot

        try:
            found, _ = data_snapshot.get_snapshot().find_provider_model(model, None, None, None)
        except LookupError:
            found = None
        provider = found.id if found is not None else None
    if not provider:
        raise InvalidArgumentError(
            "Unknown model: no provider prices it",
            value=model,
            hint="Name it as provider/model (e.g. openai/gpt-4o) or pass --provider; "
            "`wflo costs prices show PROVIDER MODEL` shows a model's price",
            docs="costs.md#comparing-providers",
        )
    try:
        price = find_price(provider, model)
    except UnknownModelPrice as exc:
        raise InvalidArgumentError(
            f"Unknown model {provider}/{model}: no price is known for it",
            value=f"{provider}/{model}",
            hint="Check the spelling (e.g. openai/gpt-4o-mini), or register a custom price",
            docs="costs.md#comparing-providers",
        ) from exc
    if not price.priced:
        raise InvalidArgumentError(
            f"Unknown model {provider}/{model}: no price is known for it",
            value=f"{provider}/{model}",
            hint="Check the spelling (e.g. openai/gpt-4o-mini), or register a custom price",
            docs="costs.md#comparing-providers",
        )
    return provider, model


def class_of(provider: str, model: str) -> str:
    """The comparable class ``provider``'s ``model`` belongs to (its first one)."""
    names = {model, _canonical(provider, model)}
    listed = genai_provider(provider)  # a Vertex AI model is in its Gemini API class
    for name, models in COMPARABLE_CLASSES.items():
        if any(p == listed and m in names for p, m in models):
            return name
    raise InvalidArgumentError(
        f"{provider}/{model} is in no comparable class",
        value=f"{provider}/{model}",
        hint=f"Pass --class with one of: {', '.join(COMPARABLE_CLASSES)}",
        docs="costs.md#comparing-providers",
    )


def _cost(provider: str, model: str, usages: Sequence[Usage]) -> tuple[Decimal, str] | None:
    try:
        price = find_price(provider, model)
    except UnknownModelPrice:
        return None
    if not price.priced:
        return None
    total = sum(
        (price.cost(u.input_tokens, u.output_tokens, u.cached_input_tokens) for u in usages),
        Decimal(0),
    )
    return total, price.source


def compare_costs(
    provider: str | None,
    model: str,
    usages: Iterable[Usage],
    *,
    comparable_class: str | None = None,
) -> Comparison:
    """Price ``usages`` (one per call) on ``provider``'s ``model`` and on every model of
    its comparable class (or ``comparable_class``), cheapest first. ``provider``: None
    to tell it from ``model`` (``provider/model``, or a model of the table or
    genai-prices' data).

    Raises:
        InvalidArgumentError: an unknown model or class, or usage no call can have.
    """
    calls = list(usages)
    if not calls:
        raise InvalidArgumentError(
            "Nothing to compare: no call with token usage",
            value=f"{provider}/{model}",
            hint="Give --input-tokens/--output-tokens, or a run whose calls recorded usage",
        )
    for u in calls:
        check_usage(u.input_tokens, u.output_tokens, u.cached_input_tokens)
    provider, model = resolve_model(model, provider)
    chosen = comparable_class or class_of(provider, model)
    if chosen not in COMPARABLE_CLASSES:
        raise InvalidArgumentError(
            "Unknown comparable class",
            value=chosen,
            hint=f"Use one of: {', '.join(COMPARABLE_CLASSES)}",
            docs="costs.md#comparing-providers",
        )
    mine = _canonical(provider, model)
    rows: list[ComparisonRow] = []
    unpriced: list[str] = []
    candidates = [(provider, model), *COMPARABLE_CLASSES[chosen]]
    for index, (p, m) in enumerate(candidates):
        is_mine = index == 0
        if not is_mine and p == provider and m in (model, mine):
            continue  # the caller's model, already listed under its own name
        priced = _cost(p, m, calls)
        if priced is None:
            unpriced.append(f"{p}/{m}")
            continue
        rows.append(ComparisonRow(p, m, priced[0], priced[1], yours=is_mine))
    rows.sort(key=lambda r: (r.cost_usd, not r.yours, r.provider, r.model))
    return Comparison(
        provider=provider,
        model=model,
        comparable_class=chosen,
        calls=len(calls),
        input_tokens=sum(u.input_tokens for u in calls),
        output_tokens=sum(u.output_tokens for u in calls),
        cached_input_tokens=sum(u.cached_input_tokens for u in calls),
        rows=tuple(rows),
        unpriced=tuple(unpriced),
    )
