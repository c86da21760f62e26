"""Similar-incident search: vector candidates, one row per incident, near-duplicates collapsed.

Invariants: results never include the query incident; each incident appears once (its best
analysis); near-duplicates of a kept row are left out of the next search rounds, so a flood of
copies cannot hide the other matches; each hit lists the near-duplicates folded into it (the
first MAX_FOLDED_LISTED, best first; its count is exact). Cached results are keyed by the
store's identity, the PII key's fingerprint and the index generation (a newly saved vector in
any process changes the key), and hold only analysis ids and scores (of the folded ones too):
titles, IOCs and query text are read from the database or the caller when served, never
stored in the cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
MAX_ROUND = 4096  # candidates fetched per search round
MAX_EXAMINED = 65_536  # candidates examined per query at most (rounds exclude earlier ones)
MAX_FOLDED_LISTED = 100  # near-duplicates listed per hit; a flood of one template is counted
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
    # Restricted incidents the asking actor may not see: never candidates.
    hidden_incidents: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Candidate:
    pk: int
    score: float
    row: Any
    duplicates: int = 0
    folded: list[_Candidate] = field(default_factory=list)


class _Selection:
    """Candidates taken best first: filtered, one per incident, near-duplicates folded."""

    def __init__(self, connection: Connection, index: VectorIndex, query: SimilarQuery) -> None:
        self.connection = connection
        self.index = index
        self.query = query
        self.kept: list[_Candidate] = []
        self._kept_vectors: list[np.ndarray] = []
        self._incidents: set[str] = set()

    def take(self, candidates: Sequence[tuple[int, float]]) -> None:
        """Consider one round of candidates, in score order."""
        rows = _rows(self.connection, [pk for pk, _ in candidates])
        for pk, score in candidates:
            row = rows.get(pk)
            if row is None or not _passes(row, self.query) or row.incident_id in self._incidents:
                continue  # candidates come best first: an incident's first analysis is its best
            self._incidents.add(row.incident_id)
            vector = self.index.vector(pk)
            if vector is not None and self._kept_vectors:
                similarity = np.stack(self._kept_vectors) @ vector
                twin = int(np.argmax(similarity))
                if similarity[twin] >= NEAR_DUPLICATE_COSINE:
                    kept = self.kept[twin]
                    kept.duplicates += 1
                    if len(kept.folded) < MAX_FOLDED_LISTED:
                        kept.folded.append(_Candidate(pk, score, row))
                    continue
            if len(self.kept) < self.query.k * 3:
                self.kept.append(_Candidate(pk, score, row))
                self._kept_vectors.append(vector if vector is not None else np.zeros(
                    self.index.dimension, dtype=np.float32))

    @property
    def enough(self) -> bool:
        """Whether k distinct incidents are kept."""
        return len(self.kept) >= self.query.k


def search(connection: Connection, index: VectorIndex, query: SimilarQuery,
           query_text: str | None = None) -> SimilarResult:
    """The top-k similar incidents for the query, best first."""
    started = time.perf_counter()
    hits = [_hit(candidate, query) for candidate in rank(connection, index, query)]
    return SimilarResult(query_text, query.exclude_incident_id, hits,
                         (time.perf_counter() - started) * 1000)


def rank(connection: Connection, index: VectorIndex, query: SimilarQuery) -> list[_Candidate]:
    """The top-k candidates, one per incident, best first.

    Each round asks the index for the next best candidates, leaving out every one examined
    before, until k incidents are kept or the index (or MAX_EXAMINED) is exhausted.
    """
    selection = _Selection(connection, index, query)
    probe = min(max(64, query.k * 16), MAX_ROUND)
    examined: list[np.ndarray] = []
    count = 0
    while True:
        scores, ids = index.search_excluding(
            query.vector, probe, np.concatenate(examined) if examined else np.zeros(0, np.int64))
        found = ids[0] >= 0
        selection.take([(int(pk), float(score)) for pk, score in
                        zip(ids[0][found], scores[0][found], strict=True)])
        examined.append(ids[0][found])
        count += int(found.sum())
        if selection.enough or found.sum() < probe or count >= min(len(index), MAX_EXAMINED):
            break
        probe = min(probe * 4, MAX_ROUND, MAX_EXAMINED - count)
    return selection.kept[: query.k]


def _passes(row: Any, query: SimilarQuery) -> bool:
    if row.incident_id == query.exclude_incident_id or row.incident_id in query.hidden_incidents:
        return False
    if query.severity and (row.severity or "") not in query.severity:
        return False
    if query.since is not None and row.created_at < query.since:
        return False
    return not (query.until is not None and row.created_at > query.until)


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
        near_duplicate_hits=[_hit(member, query) for member in candidate.folded],
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


def ranking_to_json(ranking: Sequence[_Candidate]) -> bytes:
    """The cached form of a result: analysis ids, scores, fold counts and the folded analyses'
    ids and scores, no text at all."""
    return json.dumps({"hits": [[c.pk, c.score, c.duplicates,
                                 [[f.pk, f.score] for f in c.folded]] for c in ranking]}).encode()


def ranking_from_json(data: bytes) -> list[_Candidate]:
    """The ranking ranking_to_json() stored, without rows (row is None until read)."""
    return [_Candidate(int(pk), float(score), None, int(duplicates),
                       [_Candidate(int(f_pk), float(f_score), None) for f_pk, f_score in folded])
            for pk, score, duplicates, folded in json.loads(data)["hits"]]


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
                use_cache: bool = True, hidden: frozenset[str] = frozenset(),
                scope: str = "") -> SimilarResult:
        """Incidents like a typed text or like a stored incident, best first, cached per index
        generation (a newly saved vector changes the key, so results are never stale) and per
        access scope (role, teams, hidden incidents), never including a `hidden` incident."""
        if (text is None) == (incident_id is None):
            raise StoreError("similar: give either a text or an incident id")
        if text is not None and not text.strip():
            raise StoreError("similar: the query text is empty")
        wanted = tuple(sorted(s.lower() for s in severity)) if severity else None
        started = time.perf_counter()
        index = self.vectors.index()
        clean = None if text is None else self.vectors.scrubber.scrub(text)
        key = self._cache_key(clean, incident_id, k, wanted, since, until, index, scope)
        cache = self._cache_provider() if use_cache else None
        found = cache.get(SIMILAR_NAMESPACE, key) if cache is not None else None
        if found is not None:
            hits = self._served(ranking_from_json(found), text, incident_id)
            if hits is not None:
                return SimilarResult(text, incident_id, hits,
                                     (time.perf_counter() - started) * 1000, from_cache=True)
        vector, analysis = self._query_vector(clean, incident_id)
        iocs, techniques = query_indicators(analysis, text)
        query = SimilarQuery(vector=vector, k=k, exclude_incident_id=incident_id,
                             severity=wanted, since=since, until=until, query_iocs=iocs,
                             query_techniques=techniques, hidden_incidents=hidden)
        with read_connection(self.engine) as connection:
            ranking = rank(connection, index, query)
        if cache is not None:
            cache.set(SIMILAR_NAMESPACE, key, ranking_to_json(ranking), SIMILAR_TTL_SECONDS)
        return SimilarResult(text, incident_id, [_hit(c, query) for c in ranking],
                             (time.perf_counter() - started) * 1000)

    def _served(self, ranking: list[_Candidate], text: str | None,
                incident_id: str | None) -> list[SimilarHit] | None:
        """The hits of a cached ranking, read from the database; None if one has gone."""
        every = [*ranking, *(member for candidate in ranking for member in candidate.folded)]
        with read_connection(self.engine) as connection:
            rows = _rows(connection, [candidate.pk for candidate in every])
            analysis = None if incident_id is None else _latest_analysis(connection, incident_id)
        if any(candidate.pk not in rows for candidate in every):
            return None  # an analysis was removed since: search again
        for candidate in every:
            candidate.row = rows[candidate.pk]
        iocs, techniques = query_indicators(analysis, text)
        query = SimilarQuery(vector=np.zeros(0, np.float32), exclude_incident_id=incident_id,
                             query_iocs=iocs, query_techniques=techniques)
        return [_hit(candidate, query) for candidate in ranking]

    def known_counts(self, incident_ids: list[str], scope: str = "") -> dict[str, int]:
        """For incidents whose similar results are cached now, how many distinct incidents
        (near-duplicates folded into one) scored at least the seen-before score; incidents not
        in the cache are left out (unknown, not zero). At most DEFAULT_SIMILAR_K: a flood of
        one templated alert counts once, not hundreds of times."""
        cache = self._cache_provider()
        if cache is None or not self.vectors.index_loaded:
            return {}
        index = self.vectors.index()
        counts: dict[str, int] = {}
        for incident_id in incident_ids:
            key = self._cache_key(None, incident_id, DEFAULT_SIMILAR_K, None, None, None, index,
                                  scope)
            found = cache.get(SIMILAR_NAMESPACE, key)
            if found is not None:
                counts[incident_id] = sum(1 for candidate in ranking_from_json(found)
                                          if candidate.score >= self.seen_min_score)
        return counts

    def warm(self, incident_ids: Iterable[str], stop: threading.Event | None = None,
             hidden: frozenset[str] = frozenset(), scope: str = "") -> int:
        """Compute and cache similar results for incidents, yielding to `stop`; how many."""
        warmed = 0
        for incident_id in incident_ids:
            if stop is not None and stop.is_set():
                break
            try:
                self.similar(incident_id=incident_id, hidden=hidden, scope=scope)
            except StoreError:
                continue  # an incident without analysis has nothing to warm
            warmed += 1
        return warmed

    def _query_vector(self, clean_text: str | None, incident_id: str | None
                      ) -> tuple[np.ndarray, dict[str, Any] | None]:
        if clean_text is not None:
            vectors, _calls = self.vectors.embed_texts([clean_text])
            return vectors[0], None
        assert incident_id is not None
        with read_connection(self.engine) as connection:
            row = _latest_analysis_row(connection, incident_id)
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

    def _cache_key(self, clean_text: str | None, incident_id: str | None, k: int,
                   severity: tuple[str, ...] | None, since: datetime | None,
                   until: datetime | None, index: VectorIndex, scope: str = "") -> str:
        """The key of one query's ranking: the store, its PII key, the index generation and
        the asker's access scope name the answer; the text is keyed in its pseudonymised form,
        never as typed."""
        canonical = json.dumps({
            "v": 3, "store": index.store_id, "pii_key": self.vectors.scrubber.fingerprint,
            "embedder": self.vectors.embedder.name, "generation": index.high_water_mark,
            "text": clean_text, "incident": incident_id, "k": k, "severity": severity,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "scope": scope,
        }, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _latest_analysis_row(connection: Connection, incident_id: str) -> Any:
    """The incident's newest analysis with the incident's text, or None."""
    return connection.execute(
        select(col(Analysis.id), col(Analysis.analysis_json), col(Incident.title),
               col(Incident.description), col(Incident.initial_findings))
        .join(Incident, col(Incident.incident_id) == col(Analysis.incident_id))
        .where(col(Analysis.incident_id) == incident_id)
        .order_by(col(Analysis.created_at).desc(), col(Analysis.id).desc())
        .limit(1)
    ).first()


def _latest_analysis(connection: Connection, incident_id: str) -> dict[str, Any] | None:
    """The incident's newest analysis document, or None."""
    row = _latest_analysis_row(connection, incident_id)
    return None if row is None else dict(json.loads(row.analysis_json))
