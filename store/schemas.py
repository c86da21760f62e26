"""Typed shapes at the store's edge: validated input records and the small objects it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MAX_ID_CHARS = 256
# Tokens of one model call: far above any context window, and far from overflowing the sums.
MAX_TOKENS = 1_000_000_000
# How many similar incidents a search returns unless asked otherwise (the CLI's and TUI's default).
DEFAULT_SIMILAR_K = 10
# The usual severity scale; an analysis may also carry its own word (any stored one is valid).
SEVERITY_SCALE = ("critical", "high", "medium", "low", "info", "informational")
# What the cache holds: embedding vectors, similar-incident results, chat answers.
CACHE_NAMESPACES = ("embed", "similar", "chat")


def as_utc(moment: datetime) -> datetime:
    """Attach UTC to a naive datetime and convert an aware one to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class IncidentIn(BaseModel):
    """An incident as a caller describes it; incident_id is the caller's own id."""

    model_config = ConfigDict(extra="ignore")

    incident_id: StrictStr = Field(max_length=MAX_ID_CHARS)
    title: StrictStr = ""
    description: StrictStr = ""
    initial_findings: StrictStr = ""

    @field_validator("incident_id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class UsageIn(BaseModel):
    """Token counts and timing of the model call that produced an analysis."""

    model_config = ConfigDict(extra="ignore")

    input_tokens: StrictInt = Field(default=0, ge=0, le=MAX_TOKENS)
    output_tokens: StrictInt = Field(default=0, ge=0, le=MAX_TOKENS)
    total_tokens: StrictInt | None = Field(default=None, ge=0, le=2 * MAX_TOKENS)
    start_time: datetime | None = None
    end_time: datetime | None = None
    request_id: StrictStr | None = Field(default=None, max_length=MAX_ID_CHARS)
    model_name: StrictStr | None = None
    kind: Literal["chat", "embedding"] = "chat"

    @field_validator("start_time", "end_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return as_utc(value)
        except OverflowError:
            # A ValueError is what pydantic turns into a field error (not a crash).
            raise ValueError("is out of range once converted to UTC") from None


class AnalysisIn(BaseModel):
    """One record of `incidex --save`: an incident, its analysis and the call's usage."""

    model_config = ConfigDict(extra="ignore")

    incident: IncidentIn
    analysis: dict[str, Any]
    model_name: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)
    usage: UsageIn | None = None


SaveStatus = Literal["saved", "duplicate", "error"]


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What happened to one record."""

    incident_id: str | None
    analysis_id: str | None
    status: SaveStatus
    error: str | None = None
    pk: int | None = None

    @classmethod
    def failed(cls, incident_id: str | None, message: str) -> SaveResult:
        """A record that was refused, with the one-line reason naming record and field."""
        return cls(incident_id, None, "error", message)


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """A row of the incident list."""

    incident_id: str
    title: str
    latest_severity: str | None
    analysis_count: int
    created_at: datetime
    updated_at: datetime
    similar_count: int | None = None
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """An incident's full text."""

    incident_id: str
    title: str
    description: str
    initial_findings: str
    created_at: datetime
    updated_at: datetime
    # Set (one line naming the key) when the sealed text could not be opened; the text is "".
    unreadable: str | None = None


@dataclass(frozen=True, slots=True)
class AnalysisRecord:
    """One analysis of an incident, with the usage of the call that made it."""

    pk: int
    analysis_id: str
    incident_id: str
    model_name: str
    created_at: datetime
    analysis: dict[str, Any]
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    severity: str | None = None
    # Set (one line naming the key) when the sealed analysis could not be opened.
    unreadable: str | None = None


IncidentSort = Literal["updated", "created", "incident_id", "severity", "analyses", "cost"]
INCIDENT_SORTS: tuple[IncidentSort, ...] = (
    "updated", "created", "severity", "analyses", "cost", "incident_id")


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Keyset position: the sort key's values (as text) of the row a page ended on."""

    sort: IncidentSort
    values: tuple[str, ...]
    descending: bool = True


@dataclass(frozen=True, slots=True)
class IncidentPage:
    """A page of incidents and the cursors to fetch the neighbouring pages."""

    rows: list[IncidentSummary]
    next_cursor: PageCursor | None
    previous_cursor: PageCursor | None


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Tokens and cost summed over one key (a model, a day or an incident)."""

    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Decimal
    unpriced_calls: int = 0


@dataclass(frozen=True, slots=True)
class UsageByDay:
    """Tokens and cost of one calendar day (UTC)."""

    day: date
    calls: int
    total_tokens: int
    cost_usd: Decimal


@dataclass(slots=True)
class StoreSummary:
    """Counts for the headless summary and the status line."""

    incidents: int
    analyses: int
    model_calls: int
    cost_usd: Decimal
    database_url: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimilarHit:
    """One similar past incident: its best-matching analysis, the score and why it matched."""

    incident_id: str
    analysis_id: str
    title: str
    severity: str | None
    created_at: datetime
    score: float
    shared_iocs: list[str] = field(default_factory=list)
    shared_techniques: list[str] = field(default_factory=list)
    near_duplicates: int = 0
    # The folded incidents themselves, best first (at most MAX_FOLDED_LISTED of them).
    near_duplicate_hits: list[SimilarHit] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SimilarResult:
    """The answer to one similar-incident query."""

    query_text: str | None
    query_incident_id: str | None
    hits: list[SimilarHit]
    elapsed_ms: float
    from_cache: bool = False
