"""Similar-incident search: vector candidates, one row per incident, near-duplicates collapsed.

Invariants: results never include the query incident; each incident appears once (its best
analysis); cached results are keyed by the index generation, so a newly saved vector in any
process changes the key and a stale answer is never served.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Engine, select
from sqlmodel import col

from store.db.engine import read_connection
from store.db.models import Analysis, Incident, table_of
from store.errors import StoreError
from store.schemas import DEFAULT_SIMILAR_K, SimilarHit, SimilarResult
from store.vectors.index import VectorIndex
from store.vectors.text import indicators_in_text, iocs_of, techniques_of

if TYPE_CHECKING:
    from store.cache import Cache
    from store.vectors.service import VectorService

NEAR_DUPLICATE_COSINE = 0.97
MAX_PROBE = 4096
SIMILAR_NAMESPACE = "similar"
SIMILAR_TTL_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """What to search for: a vector, the incident to leave out, filters, and what to explain."""

    vector: np.ndarray
    k: int = DEFAULT_SIMILAR_K
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


class SimilarSearch:
    """Similar incidents from the engine, the vectors and the cache, one result per query."""

    def __init__(self, engine: Engine, vectors: VectorService,
                 cache_provider: Callable[[], Cache | None], seen_min_score: float) -> None:
        self.engine = engine
        self.vectors = vectors
        self._cache_provider = cache_provider
        self.seen_min_score = seen_min_score

    def similar(self, text: str | None = None, incident_id: str | None = None,
                k: int = DEFAULT_SIMILAR_K, severity: Iterable[str] | None = None,
                since: datetime | None = None, until: datetime | None = None,
                use_cache: bool = True) -> SimilarResult:
        """Incidents like a typed text or like a stored incident, best first, cached per index
        generation (a newly saved vector changes the key, so results are never stale)."""
        if (text is None) == (incident_id is None):
            raise StoreError("similar: give either a text or an incident id")
        if text is not None and not text.strip():
            raise StoreError("similar: the query text is empty")
        wanted = tuple(sorted(s.lower() for s in severity)) if severity else None
        started = time.perf_counter()
        index = self.vectors.index()
        key = self._cache_key(text, incident_id, k, wanted, since, until, index.high_water_mark)
        cache = self._cache_provider() if use_cache else None
        if cache is not None:
            found = cache.get(SIMILAR_NAMESPACE, key)
            if found is not None:
                result = result_from_json(found)
                return SimilarResult(result.query_text, result.query_incident_id, result.hits,
                                     (time.perf_counter() - started) * 1000, from_cache=True)
        vector, analysis = self._query_vector(text, incident_id)
        iocs, techniques = query_indicators(analysis, text)
        query = SimilarQuery(vector=vector, k=k, exclude_incident_id=incident_id,
                             severity=wanted, since=since, until=until, query_iocs=iocs,
                             query_techniques=techniques)
        with read_connection(self.engine) as connection:
            result = search(connection, index, query, text)
        if cache is not None:
            cache.set(SIMILAR_NAMESPACE, key, result_to_json(result), SIMILAR_TTL_SECONDS)
        return SimilarResult(result.query_text, result.query_incident_id, result.hits,
                             (time.perf_counter() - started) * 1000)

    def known_counts(self, incident_ids: list[str]) -> dict[str, int]:
        """For incidents whose similar results are cached now, how many distinct incidents
        (near-duplicates folded into one) scored at least the seen-before score; incidents not
        in the cache are left out (unknown, not zero). At most DEFAULT_SIMILAR_K: a flood of
        one templated alert counts once, not hundreds of times."""
        cache = self._cache_provider()
        if cache is None or not self.vectors.index_loaded:
            return {}
        generation = self.vectors.index().high_water_mark
        counts: dict[str, int] = {}
        for incident_id in incident_ids:
            key = self._cache_key(None, incident_id, DEFAULT_SIMILAR_K, None, None, None,
                                  generation)
            found = cache.get(SIMILAR_NAMESPACE, key)
            if found is not None:
                hits = result_from_json(found).hits
                counts[incident_id] = sum(1 for hit in hits if hit.score >= self.seen_min_score)
        return counts

    def warm(self, incident_ids: Iterable[str], stop: threading.Event | None = None) -> int:
        """Compute and cache similar results for incidents, yielding to `stop`; how many."""
        warmed = 0
        for incident_id in incident_ids:
            if stop is not None and stop.is_set():
                break
            try:
                self.similar(incident_id=incident_id)
            except StoreError:
                continue  # an incident without analysis has nothing to warm
            warmed += 1
        return warmed

    def _query_vector(self, text: str | None, incident_id: str | None
                      ) -> tuple[np.ndarray, dict[str, Any] | None]:
        if text is not None:
            clean = self.vectors.scrubber.scrub(text)
            vectors, _calls = self.vectors.embed_texts([clean])
            return vectors[0], None
        with read_connection(self.engine) as connection:
            row = connection.execute(
                select(col(Analysis.id), col(Analysis.analysis_json), col(Incident.title),
                       col(Incident.description), col(Incident.initial_findings))
                .join(Incident, col(Incident.incident_id) == col(Analysis.incident_id))
                .where(col(Analysis.incident_id) == incident_id)
                .order_by(col(Analysis.created_at).desc(), col(Analysis.id).desc())
                .limit(1)
            ).first()
        if row is None:
            raise StoreError(f"similar: no incident {incident_id!r} with an analysis")
        analysis = json.loads(row.analysis_json)
        stored = self.vectors.index().vector(row.id)
        if stored is not None:
            return stored, analysis
        clean = self.vectors.clean_text(row.title, row.description, row.initial_findings,
                                        analysis)
        vectors, _calls = self.vectors.embed_texts([clean])
        return vectors[0], analysis

    def _cache_key(self, text: str | None, incident_id: str | None, k: int,
                   severity: tuple[str, ...] | None, since: datetime | None,
                   until: datetime | None, generation: int) -> str:
        canonical = json.dumps({
            "v": 1, "embedder": self.vectors.embedder.name, "generation": generation,
            "text": text, "incident": incident_id, "k": k, "severity": severity,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
