"""Short, stable text for times, money, token counts and severities."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0, "informational": 0}
SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "green",
    "info": "dim",
    "informational": "dim",
}


def relative_age(moment: datetime, now: datetime) -> str:
    """'just now', '5m ago', '3h ago', '12d ago', or the date when older than 60 days."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 60 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return moment.strftime("%Y-%m-%d")


def timestamp(moment: datetime) -> str:
    """A UTC timestamp to the minute."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def money(amount: Decimal | float | None) -> str:
    """Dollars: cents above one dollar, four decimals below, an en dash when unknown."""
    if amount is None:
        return "–"
    value = Decimal(str(amount))
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}"


UNPRICED = "unpriced"


def cost(amount: Decimal | None, unpriced_calls: int = 0, calls: int = 1) -> str:
    """The cost of model calls as every screen shows it: dollars, or 'unpriced' when no call
    behind the amount had a known price (a local or unknown model), never a made-up $0."""
    if amount is None or (calls > 0 and unpriced_calls >= calls):
        return UNPRICED
    return money(amount)


def tokens(count: int | None) -> str:
    """A token count with thousands separators, an en dash when unknown."""
    return "–" if count is None else f"{count:,}"


def compact(count: int) -> str:
    """A count in at most five characters: 999, 12.3k, 4.5M."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def severity_style(severity: str | None) -> str:
    """The Rich style of a severity label."""
    return SEVERITY_STYLE.get((severity or "").lower(), "")


def score_bar(score: float, width: int = 10) -> str:
    """A bar of `width` cells for a score between 0 and 1, in eighths."""
    blocks = " ▏▎▍▌▋▊▉█"
    eighths = round(max(0.0, min(1.0, score)) * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (blocks[part] if part else "")
    return bar.ljust(width)
