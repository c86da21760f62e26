"""Cost of a model call in USD, from the genai-prices tables, priced at the call's time."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any


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
    # Price tables change rarely; looking the model up once per day keeps saves fast.
    found = _model_price(model_name, at.date().isoformat(), kind)
    if found is None:
        return Price(None, None)
    model_price, source = found
    if isinstance(model_price.input_mtok, Decimal | None) and isinstance(
        model_price.output_mtok, Decimal | None
    ):
        # A flat per-token price: the library's own formula, without its per-call overhead.
        cost = (
            (model_price.input_mtok or Decimal(0)) * input_tokens
            + (model_price.output_mtok or Decimal(0)) * output_tokens
        ) / _MILLION
        return Price(cost, source)
    from genai_prices import Usage

    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return Price(Decimal(model_price.calc_price(usage)["total_price"]), source)


_MILLION = Decimal(1_000_000)


@lru_cache(maxsize=4096)
def _model_price(model_name: str, day: str, kind: str) -> tuple[Any, str] | None:
    """The price table entry in force on `day` for a model, and its source label."""
    from genai_prices import Usage, calc_price

    moment = datetime.fromisoformat(day + "T12:00:00+00:00")
    empty = Usage(input_tokens=0, output_tokens=0)
    for provider in dict.fromkeys((_provider_hint(model_name, kind), None)):
        try:
            result = calc_price(empty, model_name, provider_id=provider,
                                genai_request_timestamp=moment)
        except (LookupError, ValueError):
            continue
        source = f"genai-prices {price_library_version()} {result.provider.id}/{result.model.id}"
        return result.model_price, source
    return None


def _provider_hint(model_name: str, kind: str) -> str | None:
    """Embedding model names are not matched without a provider; OpenAI's are the usual ones."""
    if kind == "embedding" and model_name.startswith("text-embedding"):
        return "openai"
    return None
