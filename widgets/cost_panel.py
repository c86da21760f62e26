"""Totals of tokens and dollars, and what the cache saved, in a few lines."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual.widgets import Static

from widgets.format import compact, cost, money


@dataclass(frozen=True)
class CostTotals:
    """Summed usage over every model call."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unpriced_calls: int = 0


class CostPanel(Static):
    """Totals and cache savings; `update_totals` takes plain numbers."""

    DEFAULT_CSS = """
    CostPanel {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    def update_totals(self, totals: CostTotals, cache: dict[str, Any] | None) -> None:
        """Show these totals and, when known, the cache's hit rate and savings."""
        tokens = totals.input_tokens + totals.output_tokens
        line = Text.assemble(
            (cost(totals.cost_usd, totals.unpriced_calls, totals.calls), "bold"),
            f" over {totals.calls:,} calls · ",
            (compact(tokens), "bold"), f" tokens ({compact(totals.input_tokens)} in, "
            f"{compact(totals.output_tokens)} out)",
        )
        if totals.unpriced_calls:
            line.append(f" · {totals.unpriced_calls:,} calls without a price", style="yellow")
        self.update(Text.assemble(("Total  ", "bold"), line, "\n", ("Cache  ", "bold"),
                                  cache_line(cache)))


def cache_line(cache: dict[str, Any] | None) -> Text:
    """Hit rate and what the hits saved, or why it is not shown."""
    if cache is None:
        return Text("statistics not available from this store", style="dim")
    hits, misses = int(cache.get("hits") or 0), int(cache.get("misses") or 0)
    if hits + misses == 0:
        return Text("no lookups yet", style="dim")
    rate = cache.get("hit_rate")
    rate_text = f"{float(rate):.0%}" if rate is not None else "–"
    return Text.assemble(
        (rate_text, "bold"), f" hit rate ({hits:,} hits, {misses:,} misses) · saved ",
        (compact(int(cache.get("tokens_saved") or 0)), "bold"), " tokens and ",
        (money(Decimal(str(cache.get("usd_saved") or 0))), "bold"),
    )
