"""Dollars (or tokens) per day as a bar chart drawn with plotext."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from textual_plotext import PlotextPlot


class UsageChart(PlotextPlot):
    """A bar per day; `update_days` takes (day, tokens, dollars) triples."""

    DEFAULT_CSS = """
    UsageChart {
        height: 1fr;
        min-height: 8;
    }
    """

    shown_days: Sequence[tuple[date, int, Decimal]] = ()

    def update_days(self, days: Sequence[tuple[date, int, Decimal]]) -> None:
        """Draw the cost of each day, oldest on the left."""
        self.shown_days = list(days)
        plot = self.plt
        plot.clear_data()
        plot.clear_figure()
        labels = [day.strftime("%m-%d") for day, _tokens, _cost in days]
        costs = [float(cost) for _day, _tokens, cost in days]
        total_tokens = sum(tokens for _day, tokens, _cost in days)
        plot.title(f"USD per day, last {len(days)} days ({total_tokens:,} tokens)")
        if days:
            positions = list(range(len(days)))
            plot.bar(positions, costs, marker="hd", width=0.8)
            step = max(1, len(days) // 6)
            ticks = positions[::step]
            plot.xticks([float(i) for i in ticks], [labels[i] for i in ticks])
        plot.ylabel("USD")
        self.refresh()
