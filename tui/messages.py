"""Messages that workers post and screens handle: each says, in the past tense, what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual.message import Message

if TYPE_CHECKING:
    # Types only: the messages are built in workers, after the store has loaded; importing
    # them here would load the store (SQLAlchemy, the backup code) before the first paint.
    from store import (
        AnalysisOutcome,
        AnalysisRecord,
        BackupStatus,
        Estimate,
        IncidentDetail,
        IncidentPage,
        SimilarResult,
        UsageByDay,
        UsageTotal,
    )

PageDirection = Literal["first", "last", "next", "previous", "reload"]


@dataclass
class IncidentsPageLoaded(Message):
    """One or more consecutive pages of the incident list arrived."""

    generation: int
    direction: PageDirection
    pages: list[IncidentPage]
    latest_pk: int | None = None


@dataclass
class IncidentsCounted(Message):
    """The number of incidents (matching the filter) was counted."""

    generation: int
    total: int


@dataclass
class SimilarCountsLoaded(Message):
    """Cached similar-incident counts arrived for some listed incidents."""

    counts: dict[str, int]


@dataclass
class NewAnalysesNoticed(Message):
    """The store's newest analysis id grew: another process (or this one) saved analyses."""

    latest_pk: int
    previous_pk: int
    new_incidents: int = 0


@dataclass
class CacheWarmed(Message):
    """A cache warming run over the listed incidents ended."""

    incident_ids: list[str]
    stopped: bool


@dataclass
class IncidentLoaded(Message):
    """An incident and every analysis of it arrived."""

    incident_id: str
    detail: IncidentDetail | None
    analyses: list[AnalysisRecord]


@dataclass
class AnalysisExported(Message):
    """An analysis (or a whole incident) was written to a file."""

    path: Path


@dataclass
class ViewerFileReady(Message):
    """The analysis was written to a private temporary file for $PAGER or $EDITOR."""

    path: Path
    variable: str


@dataclass
class ExportWouldOverwrite(Message):
    """An export was not written because its file exists; the analyst is asked first."""

    path: Path
    text: str


@dataclass
class SimilarFound(Message):
    """Similar incidents were found for one query."""

    generation: int
    result: SimilarResult


@dataclass
class UsageTotalsLoaded(Message):
    """Tokens and cost per model arrived, with the cache's statistics."""

    by_model: list[UsageTotal]
    cache: dict[str, Any] | None


@dataclass
class UsageByDayLoaded(Message):
    """Tokens and cost per day arrived."""

    by_day: list[UsageByDay]


@dataclass
class UsageByIncidentLoaded(Message):
    """The most expensive incidents arrived."""

    by_incident: list[UsageTotal]


@dataclass
class ImportProgressed(Message):
    """An import read further into its file."""

    done_bytes: int
    total_bytes: int
    saved: int
    failed: int


@dataclass
class ImportFinished(Message):
    """An import ended: counts and one line per record that could not be saved."""

    path: Path
    saved: int
    duplicates: int
    errors: list[str] = field(default_factory=list)


@dataclass
class DemoFillProgressed(Message):
    """The demo fill saved another batch."""

    done: int
    total: int


@dataclass
class DemoFillFinished(Message):
    """The demo fill ended."""

    saved: int
    total: int


@dataclass
class AnalysisEstimated(Message):
    """A new analysis was prepared: what its call is expected to use, before it is made."""

    incident_id: str
    model: str
    estimate: Estimate
    similar_ids: list[str]


@dataclass
class AnalysisRan(Message):
    """A new analysis was made (or served by the cache) and saved."""

    outcome: AnalysisOutcome


@dataclass
class AnalysisFailed(Message):
    """An analysis run failed; error is one line naming the incident."""

    incident_id: str
    error: str


@dataclass
class BackupStatusLoaded(Message):
    """The backups folder was looked at: snapshots, the last drill."""

    status: BackupStatus


@dataclass
class BackupsRan(Message):
    """`backup run-due` ran in the background: what it did, one line each (or its error)."""

    done: list[str]
    error: str | None = None


@dataclass
class VectorsFilled(Message):
    """The background filler embedded a batch of pending vectors, or looked and found how
    many wait (in every process's saves); `problem` says why it is not filling."""

    filled: int
    pending: int
    texts_per_second: float = 0.0
    problem: str | None = None
