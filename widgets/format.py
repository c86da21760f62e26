"""Short, stable text for times, money, token counts, severities and stored strings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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


# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates that make a terminal show text in another order than it is stored.
# C0 but tab and newline, DEL, C1, bidi overrides, and unpaired surrogates (no stream can
# write them as UTF-8).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\n|\t")


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """text with every terminal control character shown as an escape (ESC becomes \\x1b)."""
    if text.isprintable():  # the common case, checked in C: no control, no line break
        return text
    text = _LINE_BREAKS.sub(" ", text) if one_line else text.replace("\r\n", "\n")
    return _CONTROLS.sub(_escape_control, text)


def without_controls(text: str) -> str:
    """text with every terminal control character but tab and newline removed."""
    return _CONTROLS.sub("", text)


def json_text(value: Any, *, indent: int | None = None,
              default: Callable[[Any], Any] | None = None) -> str:
    """value as JSON with every control character as a \\u escape: the same data, safe to print."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=default)
    # json.dumps escapes C0 controls itself; DEL, C1 and bidi controls it leaves raw.
    return _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
