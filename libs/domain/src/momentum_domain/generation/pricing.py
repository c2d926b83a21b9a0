"""The price of a call, from the per-model table in configuration (``MOMENTUM_LLM_PRICES``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal

from momentum_domain.model_ids import base_model_id

logger = logging.getLogger(__name__)

_THOUSAND = Decimal(1000)
_warned: set[str] = set()


def price_of(
    model: str, prices: Mapping[str, tuple[float, float]]
) -> tuple[Decimal, Decimal] | None:
    """USD per 1,000 (input, output) tokens, or None for a model missing from the table."""
    # An inference profile is priced as the model it routes to.
    price = prices.get(model) or prices.get(base_model_id(model))
    if price is None:
        return None
    return Decimal(str(price[0])), Decimal(str(price[1]))


def cost_usd(
    model: str,
    input_tokens: int,
    output_tokens: int,
    prices: Mapping[str, tuple[float, float]],
) -> Decimal:
    """The exact cost in USD (not rounded; round where it is stored). An unknown model costs
    nothing and logs a warning once per process, so a missing price is noticed."""
    price = price_of(model, prices)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            logger.warning("no price configured for model %r; its calls are counted as free", model)
        return Decimal(0)
    input_price, output_price = price
    return (input_price * input_tokens + output_price * output_tokens) / _THOUSAND


__all__ = ["cost_usd", "price_of"]
