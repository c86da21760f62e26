"""A lexical ranking of incidents for a query text: SQLite FTS5 bm25(), PostgreSQL ts_rank.

Kept apart from the list filter (incident_filter.py) on purpose: the filter decides which
incidents match; this ranks the incidents whose text shares the query's words, for the
similar search to fuse with the vector ranking. Both read the full-text index over the
incident's id, title and the blind-index tokens of its sealed text (migration 0014): a query
word is looked for as itself (in the id and title) and as its token (in the sealed text).

Query terms are the text's distinct words minus Lucene's 33 English stop words, at most
MAX_TERMS of them in order of first appearance: the stop words carry no weight in bm25 but
would make every incident a match to score.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from store.crypto import cipher_of
from store.db.models import PG_SEARCH_VECTOR

MAX_TERMS = 64
# Lucene's default English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET).
STOP_WORDS = frozenset("""a an and are as at be but by for if in into is it no not of on or such
    that the their then there these they this to was will with""".split())
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def query_terms(query_text: str) -> list[str]:
    """The words of a query text that the lexical ranking searches for."""
    terms: dict[str, None] = {}
    for word in _WORD.findall(query_text.lower()):
        if len(word) > 1 and word not in STOP_WORDS:
            terms[word] = None
            if len(terms) == MAX_TERMS:
                break
    return list(terms)


def lexical_ranking(connection: Connection, query_text: str, limit: int,
                    exclude_incident_id: str | None = None) -> list[str]:
    """The incident ids best matching the query's words, best first (at most limit)."""
    terms = query_terms(query_text)
    if not terms:
        return []
    cipher = cipher_of(connection)
    if cipher is not None:
        terms += [cipher.index.token(term) for term in terms]
    if connection.dialect.name == "postgresql":
        rows = connection.execute(text(
            f"SELECT incident_id FROM incidents WHERE {PG_SEARCH_VECTOR} @@ "
            "to_tsquery('simple', :query) AND incident_id IS DISTINCT FROM :exclude "
            f"ORDER BY ts_rank({PG_SEARCH_VECTOR}, to_tsquery('simple', :query), 1) DESC, "
            "id LIMIT :limit"),
            {"query": " | ".join(terms), "exclude": exclude_incident_id, "limit": limit})
    else:
        # Column weights: the incident id is a name, not prose; title and text count alike.
        rows = connection.execute(text(
            "SELECT incidents.incident_id FROM incidents_fts "
            "JOIN incidents ON incidents.id = incidents_fts.rowid "
            "WHERE incidents_fts MATCH :query AND incidents.incident_id IS NOT :exclude "
            "ORDER BY bm25(incidents_fts, 0.0, 1.0, 1.0), incidents.id LIMIT :limit"),
            {"query": " OR ".join(f'"{term}"' for term in terms),
             "exclude": exclude_incident_id, "limit": limit})
    return [incident_id for (incident_id,) in rows]
