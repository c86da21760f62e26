"""Similar-incident search: vector and lexical rankings fused, shared indicators first, one row
per incident, near-duplicates collapsed.

Ranking: the vector ranking (the embedder's cosine) and the lexical ranking (bm25 on SQLite,
ts_rank on PostgreSQL, over the incidents' text) are fused by reciprocal rank (RRF, k=60, the
constant of Cormack, Clarke and Buettcher 2009, not tuned here); incidents that share an exact
indicator with the query (IP, domain, URL, e-mail, hash, CVE or ATT&CK id, from the
incident_indicators table) come first, ordered by the summed rarity of what they share. The
score shown stays the cosine of the hit's vector with the query's.

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
from sqlalchemy import Connection, Engine, func, select
from sqlmodel import col

from store.db.engine import read_connection
from store.db.indicators import holders_of, rarity, shared_with
from store.db.lexical import lexical_ranking
from store.db.models import Analysis, Incident, table_of
from store.db.queries import opened_row
from store.errors import StoreError
from store.indicators import indicators_in, indicators_of_incident
from store.schemas import DEFAULT_SIMILAR_K, SimilarHit, SimilarResult
from store.vectors.index import VectorIndex

if TYPE_CHECKING:
    from store.cache import Cache
    from store.vectors.service import VectorService

NEAR_DUPLICATE_COSINE = 0.97
MAX_ROUND = 4096  # candidates fetched per search round
MAX_EXAMINED = 65_536  # candidates examined per query at most (rounds exclude earlier ones)
MAX_FOLDED_LISTED = 100  # near-duplicates listed per hit; a flood of one template is counted
SIMILAR_NAMESPACE = "similar"
SIMILAR_TTL_SECONDS = 24 * 3600.0
RRF_K = 60  # reciprocal rank fusion's constant, as published; not fitted to any data here
FUSION_DEPTH = 100  # incidents taken from each ranking before fusing


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """What to search for: a vector, the incident to leave out, filters, and what to explain."""

    vector: np.ndarray
    k: int = DEFAULT_SIMILAR_K
    exclude_incident_id: str | None = None
    severity: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    indicators: frozenset[str] = frozenset()
    lexical_text: str | None = None
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
    """Candidates taken in the order given: filtered, one per incident, near-duplicates folded
    into the first kept one they resemble (cosine at least NEAR_DUPLICATE_COSINE)."""

    def __init__(self, connection: Connection, index: VectorIndex, query: SimilarQuery,
                 wanted: int) -> None:
        self.connection = connection
        self.index = index
        self.query = query
        self.wanted = wanted
        self.kept: list[_Candidate] = []
        self._capacity = wanted * 3  # more kept than wanted, so later copies still fold
        self._kept_vectors = np.zeros((self._capacity, index.dimension), np.float32)
        self._incidents: set[str] = set()

    def take(self, candidates: Sequence[tuple[int, float]]) -> None:
        """Consider one round of candidates (analysis pk, cosine), best first."""
        rows = _rows(self.connection, [pk for pk, _ in candidates])
        for pk, score in candidates:
            row = rows.get(pk)
            if row is not None:
                self.offer(_Candidate(pk, score, row))

    def offer(self, candidate: _Candidate) -> None:
        """Keep a candidate, fold it into a kept near-duplicate, or pass it over."""
        row = candidate.row
        if not _passes(row, self.query) or row.incident_id in self._incidents:
            return  # an incident's first candidate is its best
        self._incidents.add(row.incident_id)
        vector = self.index.vector(candidate.pk)
        count = len(self.kept)
        if vector is not None and count:
            similarity = self._kept_vectors[:count] @ vector
            twin = int(np.argmax(similarity))
            if similarity[twin] >= NEAR_DUPLICATE_COSINE:
                kept = self.kept[twin]
                kept.duplicates += 1 + candidate.duplicates
                room = MAX_FOLDED_LISTED - len(kept.folded)
                kept.folded.extend([candidate, *candidate.folded][: max(0, room)])
                kept.folded.sort(key=lambda member: -member.score)
                candidate.folded = []
                return
        if count < self._capacity:
            self.kept.append(candidate)
            if vector is not None:
                self._kept_vectors[count] = vector

    @property
    def enough(self) -> bool:
        """Whether the wanted number of distinct incidents is kept."""
        return len(self.kept) >= self.wanted


def search(connection: Connection, index: VectorIndex, query: SimilarQuery,
           query_text: str | None = None) -> SimilarResult:
    """The top-k similar incidents for the query, best first."""
    started = time.perf_counter()
    hits = hits_of(connection, rank(connection, index, query), query)
    return SimilarResult(query_text, query.exclude_incident_id, hits,
                         (time.perf_counter() - started) * 1000)


def rank(connection: Connection, index: VectorIndex, query: SimilarQuery) -> list[_Candidate]:
    """The top-k candidates, one per incident, best first: incidents sharing indicators with
    the query first (by summed rarity), then by the fused vector and lexical ranks."""
    depth = max(query.k, FUSION_DEPTH)
    by_vector = vector_ranking(connection, index, query, depth)
    by_text = (lexical_ranking(connection, query.lexical_text, depth, query.exclude_incident_id)
               if query.lexical_text else [])
    weights = rarity(connection, query.indicators)
    holders = holders_of(connection, weights)
    vector_candidates = {candidate.row.incident_id: candidate for candidate in by_vector}
    folded = {member.row.incident_id for candidate in by_vector for member in candidate.folded}
    fused: dict[str, float] = {}
    for ranking in (list(vector_candidates), by_text):
        for position, incident_id in enumerate(ranking, start=1):
            fused[incident_id] = fused.get(incident_id, 0.0) + 1.0 / (RRF_K + position)
    pool = (set(fused) | set(holders)) - folded
    shared = shared_with(connection, pool, weights)
    sharing = {incident_id: sum(weights[value] for value in values)
               for incident_id, values in shared.items()}
    order = sorted(pool, key=lambda incident_id: (-sharing.get(incident_id, 0.0),
                                                  -fused.get(incident_id, 0.0), incident_id))
    others = _latest_candidates(connection, index, query,
                                [i for i in order if i not in vector_candidates])
    selection = _Selection(connection, index, query, query.k)
    for incident_id in order:
        candidate = vector_candidates.get(incident_id) or others.get(incident_id)
        if candidate is not None:
            selection.offer(candidate)
            if selection.enough:
                break
    return selection.kept[: query.k]


def vector_ranking(connection: Connection, index: VectorIndex, query: SimilarQuery,
                   wanted: int) -> list[_Candidate]:
    """The `wanted` nearest incidents by vector, one per incident, best first.

    Each round asks the index for the next best candidates, leaving out every one examined
    before, until enough incidents are kept or the index (or MAX_EXAMINED) is exhausted.
    """
    selection = _Selection(connection, index, query, wanted)
    # Filters and near-duplicates leave out some candidates: ask for more than wanted.
    probe = min(max(64, query.k * 16, wanted * 2), MAX_ROUND)
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
    return selection.kept[:wanted]


def _latest_candidates(connection: Connection, index: VectorIndex, query: SimilarQuery,
                       incident_ids: list[str]) -> dict[str, _Candidate]:
    """A candidate for each incident the vector ranking did not bring: its newest analysis,
    scored by the cosine of that analysis' vector with the query's (0 when it has none)."""
    if not incident_ids:
        return {}
    analyses = table_of(Analysis).c
    newest: dict[str, int] = {}
    for start in range(0, len(incident_ids), 900):
        for incident_id, pk in connection.execute(
                select(analyses.incident_id, func.max(analyses.id))
                .where(analyses.incident_id.in_(incident_ids[start : start + 900]))
                .group_by(analyses.incident_id)):
            newest[incident_id] = pk
    rows = _rows(connection, list(newest.values()))
    found: dict[str, _Candidate] = {}
    for incident_id, pk in newest.items():
        vector = index.vector(pk)
        score = float(vector @ query.vector) if vector is not None and query.vector.size else 0.0
        if pk in rows:
            found[incident_id] = _Candidate(pk, score, rows[pk])
    return found


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
                   analyses.created_at, incidents.title)
            .join(table_of(Incident), incidents.incident_id == analyses.incident_id)
            .where(analyses.id.in_(pks[start : start + 900]))
        )
        found.update({row.id: opened_row(connection, row)
                      for row in connection.execute(statement)})
    return found


def hits_of(connection: Connection, ranking: Sequence[_Candidate], query: SimilarQuery
            ) -> list[SimilarHit]:
    """The hits of a ranking, each naming the indicators it shares with the query."""
    every = [*ranking, *(member for candidate in ranking for member in candidate.folded)]
    shared = shared_with(connection, {c.row.incident_id for c in every}, query.indicators)
    return [_hit(candidate, shared) for candidate in ranking]


def _hit(candidate: _Candidate, shared: dict[str, dict[str, str]]) -> SimilarHit:
    row = candidate.row
    mine = shared.get(row.incident_id, {})
    return SimilarHit(
        incident_id=row.incident_id,
        analysis_id=row.analysis_id,
        title=row.title,
        severity=row.severity,
        created_at=row.created_at,
        score=round(max(0.0, min(1.0, candidate.score)), 4),
        shared_iocs=sorted(value for value, kind in mine.items() if kind != "technique"),
        shared_techniques=sorted(value for value, kind in mine.items() if kind == "technique"),
        near_duplicates=candidate.duplicates,
        near_duplicate_hits=[_hit(member, shared) for member in candidate.folded],
    )


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
        typed = frozenset(i.value for i in indicators_in(text)) if text else frozenset()
        key = self._cache_key(clean, incident_id, k, wanted, since, until, index, scope)
        # The key holds the pseudonymised text, whose keyed pseudonyms still tell the typed
        # indicators apart (each e-mail its own; public IOCs are never replaced).
        cache = self._cache_provider() if use_cache else None
        found = cache.get(SIMILAR_NAMESPACE, key) if cache is not None else None
        if found is not None:
            hits = self._served(ranking_from_json(found), typed, incident_id)
            if hits is not None:
                return SimilarResult(text, incident_id, hits,
                                     (time.perf_counter() - started) * 1000, from_cache=True)
        vector, incident_text, indicators = self._query(clean, typed, incident_id)
        with read_connection(self.engine) as connection:
            query = SimilarQuery(vector=vector, k=k, exclude_incident_id=incident_id,
                                 severity=wanted, since=since, until=until,
                                 indicators=indicators, lexical_text=clean or incident_text,
                                 hidden_incidents=hidden)
            ranking = rank(connection, index, query)
            hits = hits_of(connection, ranking, query)
        if cache is not None:
            cache.set(SIMILAR_NAMESPACE, key, ranking_to_json(ranking), SIMILAR_TTL_SECONDS)
        return SimilarResult(text, incident_id, hits, (time.perf_counter() - started) * 1000)

    def _served(self, ranking: list[_Candidate], typed: frozenset[str],
                incident_id: str | None) -> list[SimilarHit] | None:
        """The hits of a cached ranking, read from the database; None if one has gone."""
        every = [*ranking, *(member for candidate in ranking for member in candidate.folded)]
        with read_connection(self.engine) as connection:
            rows = _rows(connection, [candidate.pk for candidate in every])
            if any(candidate.pk not in rows for candidate in every):
                return None  # an analysis was removed since: search again
            for candidate in every:
                candidate.row = rows[candidate.pk]
            indicators = typed if incident_id is None else _indicators_of(
                _incident_analyses(connection, incident_id))
            query = SimilarQuery(vector=np.zeros(0, np.float32), exclude_incident_id=incident_id,
                                 indicators=indicators)
            return hits_of(connection, ranking, query)

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

    def _query(self, clean_text: str | None, typed: frozenset[str], incident_id: str | None
               ) -> tuple[np.ndarray, str | None, frozenset[str]]:
        """The query's vector and indicators, and for a stored incident its text (for the
        lexical ranking): one read of the incident's analyses serves all three."""
        if clean_text is not None:
            vectors, _calls = self.vectors.embed_texts([clean_text])
            return vectors[0], None, typed
        assert incident_id is not None
        with read_connection(self.engine) as connection:
            rows = _incident_analyses(connection, incident_id)
        if not rows:
            raise StoreError(f"similar: no incident {incident_id!r} with an analysis")
        latest = rows[0]
        incident_text = "\n".join((latest.title, latest.description, latest.initial_findings))
        stored = self.vectors.index().vector(latest.id)
        if stored is None:
            clean = self.vectors.clean_text(latest.title, latest.description,
                                            latest.initial_findings,
                                            json.loads(latest.analysis_json))
            vectors, _calls = self.vectors.embed_texts([clean])
            stored = vectors[0]
        return stored, incident_text, _indicators_of(rows)

    def _cache_key(self, clean_text: str | None, incident_id: str | None, k: int,
                   severity: tuple[str, ...] | None, since: datetime | None,
                   until: datetime | None, index: VectorIndex, scope: str = "") -> str:
        """The key of one query's ranking: the store, its PII key, the index generation and
        the asker's access scope name the answer; the text is keyed in its pseudonymised form,
        never as typed."""
        canonical = json.dumps({
            "v": 4, "store": index.store_id, "pii_key": self.vectors.scrubber.fingerprint,
            "embedder": self.vectors.embedder.name, "generation": index.high_water_mark,
            "text": clean_text, "incident": incident_id, "k": k, "severity": severity,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "scope": scope,
        }, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _incident_analyses(connection: Connection, incident_id: str) -> list[Any]:
    """Every analysis of a stored incident with the incident's text, opened, newest first."""
    return [opened_row(connection, row) for row in connection.execute(
        select(col(Analysis.id), col(Analysis.analysis_id), col(Analysis.analysis_json),
               col(Analysis.key_id), col(Analysis.incident_id), col(Incident.title),
               col(Incident.description), col(Incident.initial_findings))
        .join(Incident, col(Incident.incident_id) == col(Analysis.incident_id))
        .where(col(Analysis.incident_id) == incident_id)
        .order_by(col(Analysis.created_at).desc(), col(Analysis.id).desc()))]


def _indicators_of(rows: list[Any]) -> frozenset[str]:
    """The indicators of an incident's opened text and every analysis of it (the indicator
    table may hold only their keyed tokens)."""
    if not rows:
        return frozenset()
    found = indicators_of_incident(rows[0].title, rows[0].description, rows[0].initial_findings,
                                   [json.loads(row.analysis_json) for row in rows])
    return frozenset(indicator.value for indicator in found)
