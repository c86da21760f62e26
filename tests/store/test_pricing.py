"""Prices come from genai-prices; incidex's fast path must agree with the library exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from store.ingest.pricing import price_call

MOMENT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022",
                                   "gemini-1.5-pro", "claude-sonnet-4", "gpt-4.1-mini"])
@pytest.mark.parametrize("tokens", [(0, 0), (1, 1), (1234, 567), (150_000, 9_000),
                                    (250_000, 1_000)])
def test_agrees_with_the_library(model: str, tokens: tuple[int, int]) -> None:
    from genai_prices import Usage, calc_price

    expected = calc_price(Usage(input_tokens=tokens[0], output_tokens=tokens[1]), model,
                          genai_request_timestamp=MOMENT)
    price = price_call(model, tokens[0], tokens[1], MOMENT)
    assert price.cost_usd == Decimal(expected.total_price)
    assert price.source is not None and expected.model.id in price.source


def test_unknown_and_local_models_cost_nothing_known() -> None:
    for model in ("llama3.1:8b", "my-finetune-v3", ""):
        assert price_call(model, 1000, 1000, MOMENT).cost_usd is None


def test_embedding_models_are_priced() -> None:
    price = price_call("text-embedding-3-small", 1_000_000, 0, MOMENT, kind="embedding")
    assert price.cost_usd == Decimal("0.02")
