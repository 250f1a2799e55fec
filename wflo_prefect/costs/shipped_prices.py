"""Prices wflo ships for models genai-prices' data does not list yet.

Checked after custom prices and genai-prices' data, before a model is called
unpriced. Each entry names where its price comes from; remove an entry once
genai-prices lists the model.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from wflo_prefect.costs.custom_price import CustomPrice

__all__ = ["SHIPPED_PRICES", "shipped_price"]


def _embed(model: str, per_mtok: str) -> CustomPrice:
    return CustomPrice(
        provider="cohere",
        model=model,
        input_per_mtok=Decimal(per_mtok),
        output_per_mtok=Decimal(0),
    )


#: Cohere's embedding models (cohere.com/pricing: Embed 3 $0.10, Embed 4 $0.12 per
#: million text tokens; embeddings have no output tokens).
SHIPPED_PRICES: tuple[CustomPrice, ...] = (
    _embed("embed-english-v3.0", "0.10"),
    _embed("embed-multilingual-v3.0", "0.10"),
    _embed("embed-english-light-v3.0", "0.10"),
    _embed("embed-multilingual-light-v3.0", "0.10"),
    _embed("embed-v4.0", "0.12"),
)


def shipped_price(provider: str, model: str, at: datetime) -> CustomPrice | None:
    """The shipped price of ``provider``'s ``model`` at ``at``, if wflo ships one."""
    return next((p for p in SHIPPED_PRICES if p.applies(provider, model, at)), None)
