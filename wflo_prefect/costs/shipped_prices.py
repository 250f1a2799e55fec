"""Prices wflo ships: for models genai-prices' data does not list yet, and for
Vertex AI where its list price differs from the Gemini API's.

:data:`SHIPPED_PRICES` fills gaps: checked after custom prices and genai-prices'
data, before a model is called unpriced; remove an entry once genai-prices lists
the model. :data:`VERTEX_PRICES` overrides: genai-prices' ``google`` provider also
answers for Vertex AI (``google-vertex``) with the Gemini API's prices, so these
are checked before genai-prices' data, for ``google-vertex`` only; a Vertex model
not listed here is priced at the Gemini API's list. Each entry records where its
price comes from (``source``) and when that was read (``as_of``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from wflo_prefect.costs.custom_price import CustomPrice

__all__ = [
    "SHIPPED_PRICES",
    "VERTEX_PRICES",
    "ShippedPrice",
    "shipped_price",
    "shipped_source",
    "vertex_price",
]

#: The provider id wflo records Vertex AI calls under (google-genai with ``vertexai=True``).
VERTEX = "google-vertex"


@dataclass(frozen=True, slots=True)
class ShippedPrice:
    """A price wflo ships, with where it comes from and when it was read."""

    price: CustomPrice
    source: str
    as_of: str


_COHERE = "cohere.com/pricing"


def _embed(model: str, per_mtok: str) -> ShippedPrice:
    price = CustomPrice(
        provider="cohere",
        model=model,
        input_per_mtok=Decimal(per_mtok),
        output_per_mtok=Decimal(0),
    )
    return ShippedPrice(price, _COHERE, "2025")


#: Cohere's embedding models (cohere.com/pricing: Embed 3 $0.10, Embed 4 $0.12 per
#: million text tokens; embeddings have no output tokens).
SHIPPED_PRICES: tuple[ShippedPrice, ...] = (
    _embed("embed-english-v3.0", "0.10"),
    _embed("embed-multilingual-v3.0", "0.10"),
    _embed("embed-english-light-v3.0", "0.10"),
    _embed("embed-multilingual-light-v3.0", "0.10"),
    _embed("embed-v4.0", "0.12"),
)

_VERTEX_SOURCE = "Vertex AI generative AI pricing page, 2025"


def _vertex_2_0_flash(model: str) -> ShippedPrice:
    # Vertex AI generative AI pricing page, 2025: Gemini 2.0 Flash $0.15 per million
    # input tokens (text, image, video), $1.00 audio input, $0.60 output (the Gemini
    # API: $0.10, $0.70, $0.40). No cache rate is shipped: cached input is priced at
    # the input rate, at or above Vertex's bill.
    price = CustomPrice(
        provider=VERTEX,
        model=model,
        input_per_mtok=Decimal("0.15"),
        input_audio_per_mtok=Decimal("1.00"),
        output_per_mtok=Decimal("0.60"),
    )
    return ShippedPrice(price, _VERTEX_SOURCE, "2025")


#: Vertex AI list prices that differ from the Gemini API's. Gemini 2.0 Flash-Lite
#: ($0.075 / $0.30) and the 2.5 family (pro, flash, flash-lite) have the same list
#: prices on both, so they are priced from genai-prices' Gemini API data.
VERTEX_PRICES: tuple[ShippedPrice, ...] = (
    _vertex_2_0_flash("gemini-2.0-flash"),
    _vertex_2_0_flash("gemini-2.0-flash-001"),
)


def shipped_price(provider: str, model: str, at: datetime) -> CustomPrice | None:
    """The shipped price of ``provider``'s ``model`` at ``at``, if wflo ships one."""
    found = (s.price for s in SHIPPED_PRICES if s.price.applies(provider, model, at))
    return next(found, None)


def vertex_price(provider: str, model: str, at: datetime) -> CustomPrice | None:
    """Vertex AI's own list price of ``model`` at ``at``, where it differs from the
    Gemini API's (``None`` for another provider, or a model Vertex prices the same)."""
    if provider.lower() != VERTEX:
        return None
    found = (s.price for s in VERTEX_PRICES if s.price.applies(provider, model, at))
    return next(found, None)


def shipped_source(price: CustomPrice) -> ShippedPrice | None:
    """The shipped entry ``price`` is (with its source), or ``None`` for another price."""
    return next((s for s in (*VERTEX_PRICES, *SHIPPED_PRICES) if s.price is price), None)
