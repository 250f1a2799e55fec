"""A price you set for a provider's model (per million tokens, USD)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wflo_prefect._validation import ValidatedModel

__all__ = ["CustomPrice"]


class CustomPrice(ValidatedModel, BaseModel):
    """A price you set for a provider's model (per million tokens, USD)."""

    wflo_docs: ClassVar[str | None] = "costs.md#prices"

    model_config = ConfigDict(frozen=True)

    provider: str = Field(description="Provider id, e.g. `openai`.", examples=["openai"])
    model: str = Field(description="Model name as the API reports it.", examples=["my-ft-model"])
    input_per_mtok: Decimal = Field(ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal = Field(ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million cached input tokens (default: input)."
    )
    input_audio_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million audio input tokens (default: input)."
    )
    effective_from: datetime | None = Field(
        default=None, description="First moment the price applies (inclusive); empty: always."
    )
    effective_to: datetime | None = Field(
        default=None, description="Moment the price stops applying (exclusive); empty: never."
    )

    @field_validator(
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "input_audio_per_mtok",
        mode="before",
    )
    @classmethod
    def _exact_decimal(cls, value: Any) -> Any:
        # float -> Decimal through its shortest repr, never its binary expansion.
        return Decimal(repr(value)) if isinstance(value, float) else value

    def applies(self, provider: str, model: str, at: datetime) -> bool:
        """Whether this price is the one for ``provider``/``model`` at ``at``."""
        if self.provider.lower() != provider.lower() or self.model.lower() != model.lower():
            return False
        if self.effective_from is not None and at < _aware(self.effective_from):
            return False
        return not (self.effective_to is not None and at >= _aware(self.effective_to))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
