"""Cost of a model call in USD, from the genai-prices tables, priced at the call's time."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Price:
    """The cost of one call and where the price came from; cost is None when unknown."""

    cost_usd: Decimal | None
    source: str | None


@lru_cache(maxsize=1)
def price_library_version() -> str:
    """The installed genai-prices version, stored with every priced row."""
    try:
        return importlib.metadata.version("genai-prices")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def price_call(
    model_name: str, input_tokens: int, output_tokens: int, at: datetime, kind: str = "chat"
) -> Price:
    """Price one call; an unknown or local model costs None, never an exception."""
    # Prices change rarely; the day is precise enough and keeps the memo small.
    return _price_per_day(model_name, input_tokens, output_tokens, at.date().isoformat(), kind)


@lru_cache(maxsize=65536)
def _price_per_day(
    model_name: str, input_tokens: int, output_tokens: int, day: str, kind: str
) -> Price:
    from genai_prices import Usage, calc_price

    moment = datetime.fromisoformat(day + "T12:00:00+00:00")
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    provider = _provider_hint(model_name, kind)
    try:
        result = calc_price(
            usage, model_name, provider_id=provider, genai_request_timestamp=moment
        )
    except (LookupError, ValueError):
        if provider is None:
            return Price(None, None)
        try:
            result = calc_price(usage, model_name, genai_request_timestamp=moment)
        except (LookupError, ValueError):
            return Price(None, None)
    source = f"genai-prices {price_library_version()} {result.provider.id}/{result.model.id}"
    return Price(Decimal(result.total_price), source)


def _provider_hint(model_name: str, kind: str) -> str | None:
    """Embedding model names are not matched without a provider; OpenAI's are the usual ones."""
    if kind == "embedding" and model_name.startswith("text-embedding"):
        return "openai"
    return None
