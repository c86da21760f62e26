"""Similar-incident search: vector candidates, one row per incident, near-duplicates collapsed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from store.index import VectorIndex
from store.matching import indicators_in_text, iocs_of, techniques_of
from store.models import Analysis, Incident, table_of
from store.schemas import SimilarHit, SimilarResult

NEAR_DUPLICATE_COSINE = 0.97
MAX_PROBE = 4096


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """What to search for: a vector, the incident to leave out, filters, and what to explain."""

    vector: np.ndarray
    k: int = 10
    exclude_incident_id: str | None = None
    severity: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    query_iocs: frozenset[str] = frozenset()
    query_techniques: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Candidate:
    pk: int
    score: float
    row: Any
    duplicates: int = 0


def search(connection: Connection, index: VectorIndex, query: SimilarQuery,
           query_text: str | None = None) -> SimilarResult:
    """The top-k similar incidents for the query, best first."""
    started = time.perf_counter()
    probe = min(max(64, query.k * 16), MAX_PROBE)
    kept: list[_Candidate] = []
    while True:
        scores, ids = index.search(query.vector, probe)
        candidates = [(int(pk), float(score)) for pk, score in zip(ids[0], scores[0], strict=True)
                      if pk >= 0]
        kept = _select(connection, index, query, candidates)
        exhausted = len(candidates) < probe or probe >= min(MAX_PROBE, len(index))
        if len(kept) >= query.k or exhausted:
            break
        probe = min(probe * 4, MAX_PROBE)
    hits = [_hit(candidate, query) for candidate in kept[: query.k]]
    return SimilarResult(query_text, query.exclude_incident_id, hits,
                         (time.perf_counter() - started) * 1000)


def _select(connection: Connection, index: VectorIndex, query: SimilarQuery,
            candidates: Sequence[tuple[int, float]]) -> list[_Candidate]:
    rows = _rows(connection, [pk for pk, _ in candidates])
    best: dict[str, _Candidate] = {}
    order: list[str] = []
    for pk, score in candidates:
        row = rows.get(pk)
        if row is None or not _passes(row, query):
            continue
        if row.incident_id in best:
            continue  # candidates come best first: the first analysis seen is the best
        best[row.incident_id] = _Candidate(pk, score, row)
        order.append(row.incident_id)
    return _collapse(index, [best[incident_id] for incident_id in order], query.k)


def _passes(row: Any, query: SimilarQuery) -> bool:
    if row.incident_id == query.exclude_incident_id:
        return False
    if query.severity and (row.severity or "") not in query.severity:
        return False
    if query.since is not None and row.created_at < query.since:
        return False
    return not (query.until is not None and row.created_at > query.until)


def _collapse(index: VectorIndex, ranked: list[_Candidate], k: int) -> list[_Candidate]:
    """Fold a candidate into an earlier one when their vectors are nearly the same text."""
    kept: list[_Candidate] = []
    kept_vectors: list[np.ndarray] = []
    for candidate in ranked:
        vector = index.vector(candidate.pk)
        if vector is not None and kept_vectors:
            similarity = np.stack(kept_vectors) @ vector
            twin = int(np.argmax(similarity))
            if similarity[twin] >= NEAR_DUPLICATE_COSINE:
                kept[twin].duplicates += 1
                continue
        kept.append(candidate)
        kept_vectors.append(vector if vector is not None else np.zeros(index.dimension,
                                                                      dtype=np.float32))
        if len(kept) >= k * 3:
            break
    return kept


def _rows(connection: Connection, pks: list[int]) -> dict[int, Any]:
    if not pks:
        return {}
    analyses = table_of(Analysis).c
    incidents = table_of(Incident).c
    found: dict[int, Any] = {}
    for start in range(0, len(pks), 900):
        statement = (
            select(analyses.id, analyses.analysis_id, analyses.incident_id, analyses.severity,
                   analyses.created_at, analyses.analysis_json, incidents.title)
            .join(table_of(Incident), incidents.incident_id == analyses.incident_id)
            .where(analyses.id.in_(pks[start : start + 900]))
        )
        found.update({row.id: row for row in connection.execute(statement)})
    return found


def _hit(candidate: _Candidate, query: SimilarQuery) -> SimilarHit:
    row = candidate.row
    analysis = json.loads(row.analysis_json)
    shared_iocs = sorted(iocs_of(analysis) & query.query_iocs)
    shared_techniques = sorted(techniques_of(analysis) & query.query_techniques)
    return SimilarHit(
        incident_id=row.incident_id,
        analysis_id=row.analysis_id,
        title=row.title,
        severity=row.severity,
        created_at=row.created_at,
        score=round(max(0.0, min(1.0, candidate.score)), 4),
        shared_iocs=shared_iocs,
        shared_techniques=shared_techniques,
        near_duplicates=candidate.duplicates,
    )


def query_indicators(analysis: dict[str, Any] | None, text: str | None
                     ) -> tuple[frozenset[str], frozenset[str]]:
    """The IOCs and ATT&CK ids a query brings, from its analysis or its typed text."""
    iocs: set[str] = set()
    techniques: set[str] = set()
    if analysis is not None:
        iocs |= iocs_of(analysis)
        techniques |= techniques_of(analysis)
    if text:
        typed_iocs, typed_techniques = indicators_in_text(text)
        iocs |= typed_iocs
        techniques |= typed_techniques
    return frozenset(iocs), frozenset(techniques)


def result_to_json(result: SimilarResult) -> bytes:
    """A cacheable form of a result (JSON bytes, never pickle)."""
    hits = [{**{name: getattr(hit, name) for name in hit.__slots__},  # type: ignore[attr-defined]
             "created_at": hit.created_at.isoformat()} for hit in result.hits]
    return json.dumps({"query_text": result.query_text,
                       "query_incident_id": result.query_incident_id,
                       "elapsed_ms": result.elapsed_ms, "hits": hits}).encode()


def result_from_json(data: bytes) -> SimilarResult:
    """The result result_to_json() stored, marked as served from the cache."""
    document = json.loads(data)
    hits = [SimilarHit(**{**hit, "created_at": datetime.fromisoformat(hit["created_at"])})
            for hit in document["hits"]]
    return SimilarResult(document["query_text"], document["query_incident_id"], hits,
                         document["elapsed_ms"], from_cache=True)
