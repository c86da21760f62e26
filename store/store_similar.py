"""The similar-incident verbs of the Store, kept apart so store.py stays readable."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlmodel import col

from store.engine import read_connection
from store.errors import StoreError
from store.models import Analysis, Incident
from store.schemas import SimilarResult
from store.similar import (
    SimilarQuery,
    query_indicators,
    result_from_json,
    result_to_json,
    search,
)

if TYPE_CHECKING:
    from store.store import Store

SIMILAR_NAMESPACE = "similar"
SIMILAR_TTL_SECONDS = 24 * 3600.0


def similar(store: Store, text: str | None = None, incident_id: str | None = None, k: int = 10,
            severity: Iterable[str] | None = None, since: datetime | None = None,
            until: datetime | None = None, use_cache: bool = True) -> SimilarResult:
    """Incidents like a typed text or like a stored incident, best first, cached per index
    generation (a newly saved vector changes the key, so results are never stale)."""
    if (text is None) == (incident_id is None):
        raise StoreError("similar: give either a text or an incident id")
    if text is not None and not text.strip():
        raise StoreError("similar: the query text is empty")
    wanted = tuple(sorted(s.lower() for s in severity)) if severity else None
    started = time.perf_counter()
    index = store.vectors.index()
    key = _cache_key(store, text, incident_id, k, wanted, since, until, index.high_water_mark)
    cache = store.cache if use_cache else None
    if cache is not None:
        cached = cache.get(SIMILAR_NAMESPACE, key)
        if cached is not None:
            result = result_from_json(cached)
            return SimilarResult(result.query_text, result.query_incident_id, result.hits,
                                 (time.perf_counter() - started) * 1000, from_cache=True)
    vector, analysis = _query_vector(store, text, incident_id)
    iocs, techniques = query_indicators(analysis, text)
    query = SimilarQuery(vector=vector, k=k, exclude_incident_id=incident_id, severity=wanted,
                         since=since, until=until, query_iocs=iocs, query_techniques=techniques)
    with read_connection(store.engine) as connection:
        result = search(connection, index, query, text)
    if cache is not None:
        cache.set(SIMILAR_NAMESPACE, key, result_to_json(result), SIMILAR_TTL_SECONDS)
    return SimilarResult(result.query_text, result.query_incident_id, result.hits,
                         (time.perf_counter() - started) * 1000)


def _query_vector(store: Store, text: str | None, incident_id: str | None
                  ) -> tuple[np.ndarray, dict[str, Any] | None]:
    if text is not None:
        clean = store.vectors.scrubber.scrub(text)
        vectors, _calls = store.vectors.embed_texts([clean])
        return vectors[0], None
    with read_connection(store.engine) as connection:
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
    stored = store.vectors.index().vector(row.id)
    if stored is not None:
        return stored, analysis
    clean = store.vectors.clean_text(row.title, row.description, row.initial_findings, analysis)
    vectors, _calls = store.vectors.embed_texts([clean])
    return vectors[0], analysis


def _cache_key(store: Store, text: str | None, incident_id: str | None, k: int,
               severity: tuple[str, ...] | None, since: datetime | None,
               until: datetime | None, generation: int) -> str:
    canonical = json.dumps({
        "v": 1, "embedder": store.vectors.embedder.name, "generation": generation,
        "text": text, "incident": incident_id, "k": k, "severity": severity,
        "since": since.isoformat() if since else None, "until": until.isoformat() if until
        else None,
    }, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def known_similar_counts(store: Store, incident_ids: list[str], min_score: float
                         ) -> dict[str, int]:
    """For incidents whose similar results are cached now, how many scored at least
    min_score; incidents not in the cache are left out (unknown, not zero)."""
    if store.cache is None or not store.vectors.index_loaded:
        return {}
    generation = store.vectors.index().high_water_mark
    counts: dict[str, int] = {}
    for incident_id in incident_ids:
        key = _cache_key(store, None, incident_id, 10, None, None, None, generation)
        cached = store.cache.get(SIMILAR_NAMESPACE, key)
        if cached is not None:
            hits = result_from_json(cached).hits
            counts[incident_id] = sum(1 + hit.near_duplicates for hit in hits
                                      if hit.score >= min_score)
    return counts


def warm_similar(store: Store, incident_ids: Iterable[str],
                 stop: threading.Event | None = None) -> int:
    """Compute and cache similar results for incidents, yielding to `stop`; returns how many."""
    warmed = 0
    for incident_id in incident_ids:
        if stop is not None and stop.is_set():
            break
        try:
            similar(store, incident_id=incident_id)
        except StoreError:
            continue  # an incident without analysis has nothing to warm
        warmed += 1
    return warmed
