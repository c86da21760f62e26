"""Read queries behind the TUI and the CLI: keyset pages, text filter, analyses, usage."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Select, and_, case, func, literal, or_, select, text
from sqlalchemy import tuple_ as row

from store.crypto import KeyUnavailable, cipher_of, is_sealed
from store.db.incident_filter import (
    IncidentFilter,
    fts5_match_with_blind_index,
    parse_incident_filter,
    pg_tsquery_with_blind_index,
    words_only,
)
from store.db.indicators import stored_form
from store.db.models import (
    NANOS_PER_USD,
    PG_SEARCH_VECTOR,
    Analysis,
    Incident,
    IncidentIndicator,
    RunMetadata,
    severity_rank,
    table_of,
)
from store.schemas import (
    AnalysisRecord,
    IncidentDetail,
    IncidentPage,
    IncidentSort,
    IncidentSummary,
    PageCursor,
    UsageByDay,
    UsageTotal,
)

_WORD = re.compile(r"\w+", re.UNICODE)
_INCIDENTS = table_of(Incident).c
# Each sort's keyset key, most significant first; incident_id last makes every key unique.
# Each key has an index of exactly these columns (models.py), walked in either direction.
SORT_KEYS = {
    "updated": (_INCIDENTS.updated_at, _INCIDENTS.incident_id),
    "created": (_INCIDENTS.created_at, _INCIDENTS.incident_id),
    "incident_id": (_INCIDENTS.incident_id,),
    "severity": (_INCIDENTS.severity_rank, _INCIDENTS.updated_at, _INCIDENTS.incident_id),
    "analyses": (_INCIDENTS.analysis_count, _INCIDENTS.updated_at, _INCIDENTS.incident_id),
    "cost": (_INCIDENTS.cost_nano_usd, _INCIDENTS.updated_at, _INCIDENTS.incident_id),
}


def filter_conditions(connection: Connection, query: str | None, *,
                      walk_sort_index: bool = False) -> list[Any]:
    """WHERE clauses of a typed filter: text (words, phrases, OR) and facets.

    With walk_sort_index (SQLite, a filter matching many incidents) every clause is written
    so that no index can serve it, which leaves SQLite one plan: walk the sort order's index
    and stop after a page. (SQLAlchemy does not render SQLite's INDEXED BY hint.)
    """
    parsed = parse_incident_filter(query)
    incidents = _INCIDENTS
    conditions: list[Any] = []

    def unindexed(column: Any) -> Any:
        return func.coalesce(column, column, type_=column.type) if walk_sort_index else column

    if parsed.has_indicators:
        conditions.append(indicator_text_condition(connection, parsed))
    elif connection.dialect.name == "postgresql":
        tsquery = pg_tsquery_with_blind_index(parsed, _word_token(connection))
        if tsquery is not None:
            conditions.append(text(f"{PG_SEARCH_VECTOR} @@ to_tsquery('simple', :tsquery)")
                              .bindparams(tsquery=tsquery))
    else:
        match = fts5_match_with_blind_index(parsed, _word_token(connection))
        if match is not None:
            # A unary + keeps SQLite from reading the matches by rowid first.
            conditions.append(text(
                f"{'+' if walk_sort_index else ''}incidents.id IN (SELECT rowid FROM "
                "incidents_fts WHERE incidents_fts MATCH :match)").bindparams(match=match))
    if parsed.severities:
        ranks = {0 if level == "none" else severity_rank(level) for level in parsed.severities}
        conditions.append(unindexed(incidents.severity_rank).in_(sorted(ranks)))
    if parsed.since_moment is not None:
        conditions.append(unindexed(incidents.created_at) >= parsed.since_moment)
    if parsed.until_moment is not None:
        conditions.append(unindexed(incidents.created_at) < parsed.until_moment)
    if parsed.models:
        analyses = table_of(Analysis).c
        conditions.append(select(analyses.id).where(
            analyses.incident_id == incidents.incident_id,
            analyses.model_name.in_(parsed.models)).exists())
    return conditions


def _word_token(connection: Connection) -> Callable[[str], str] | None:
    """The blind-index token of a typed word under this store's index key, None without one."""
    cipher = cipher_of(connection)
    return None if cipher is None else cipher.index.token


def indicator_text_condition(connection: Connection, parsed: IncidentFilter) -> Any:
    """The text part of a filter holding indicators: per alternative, every indicator held
    exactly (incident_indicators, from the incident's text and its analyses) and its words
    matched by the text index; the alternatives ORed."""
    holders = table_of(IncidentIndicator).c
    token_of = _word_token(connection)
    stored = stored_form(connection)
    groups = []
    for number, terms in enumerate(parsed.alternatives):
        parts: list[Any] = [_INCIDENTS.incident_id.in_(
            select(holders.incident_id).where(holders.value == stored(term.words[0])))
            for term in terms if term.indicator]
        words = words_only(terms)
        if words.alternatives[0]:
            name = f"words_{number}"
            if connection.dialect.name == "postgresql":
                parts.append(text(f"{PG_SEARCH_VECTOR} @@ to_tsquery('simple', :{name})")
                             .bindparams(**{name: pg_tsquery_with_blind_index(words, token_of)}))
            else:
                parts.append(text(f"incidents.id IN (SELECT rowid FROM incidents_fts WHERE "
                                  f"incidents_fts MATCH :{name})")
                             .bindparams(**{name: fts5_match_with_blind_index(words, token_of)}))
        groups.append(and_(*parts))
    return or_(*groups)


BROAD_MATCH = 2000
SORT_INDEXES = {"updated": "ix_incidents_updated", "created": "ix_incidents_created",
                "severity": "ix_incidents_severity", "analyses": "ix_incidents_analyses",
                "cost": "ix_incidents_cost", "incident_id": "the unique index of incident_id"}


def _broad_filter(connection: Connection, query: str | None, sort: str) -> str | None:
    """The sort index to walk when a SQLite filter matches many incidents, else None
    (then `filter_conditions(walk_sort_index=True)` makes SQLite walk it).

    A rare term is fastest from the text index outward; a common one (a fifth of a
    million incidents match "phishing") is fastest walking the sort order newest first
    and stopping at a page: 29 ms instead of 5 s at a million incidents. A filter of
    facets only walks the sort index too.
    """
    if connection.dialect.name != "sqlite" or sort not in SORT_INDEXES:
        return None
    parsed = parse_incident_filter(query)
    if parsed.has_indicators:
        return None  # an exact indicator is rare: its index finds the few incidents first
    match = fts5_match_with_blind_index(parsed, _word_token(connection))
    if match is None:
        return SORT_INDEXES[sort] if not parsed.empty else None
    found = connection.execute(
        text("SELECT count(*) FROM (SELECT rowid FROM incidents_fts "
             "WHERE incidents_fts MATCH :match LIMIT :cap)"),
        {"match": match, "cap": BROAD_MATCH},
    ).scalar_one()
    return SORT_INDEXES[sort] if found >= BROAD_MATCH else None


def incidents_page(
    connection: Connection,
    *,
    sort: IncidentSort = "updated",
    descending: bool = True,
    after: PageCursor | None = None,
    before: PageCursor | None = None,
    from_end: bool = False,
    limit: int = 100,
    query: str | None = None,
) -> IncidentPage:
    """One page in the sort order (largest first unless `descending` is False);
    `before`/`from_end` walk backwards."""
    table = table_of(Incident)
    key = SORT_KEYS[sort]
    statement: Select[Any] = select(table)
    walk = _broad_filter(connection, query, sort) if query else None
    conditions = filter_conditions(connection, query, walk_sort_index=walk is not None)
    if conditions:
        statement = statement.where(*conditions)
    backwards = before is not None or from_end
    # "after" is further down the listing: smaller when descending, larger when ascending.
    if after is not None:
        statement = statement.where(_beyond(key, after, descending))
    if before is not None:
        statement = statement.where(_beyond(key, before, not descending))
    walk_descending = descending != backwards
    order = [column.desc() if walk_descending else column.asc() for column in key]
    rows = list(connection.execute(statement.order_by(*order).limit(limit + 1)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    summaries = [_summary(r) for r in rows]
    first = _cursor(sort, descending, rows[0]) if rows else None
    last = _cursor(sort, descending, rows[-1]) if rows else None
    if backwards:
        has_newer, has_older = more, after is not None or (before is not None and not from_end)
    else:
        has_newer, has_older = after is not None or before is not None, more
    return IncidentPage(
        rows=summaries,
        next_cursor=last if has_older else None,
        previous_cursor=first if has_newer else None,
    )


def _beyond(key: tuple[Any, ...], cursor: PageCursor, descending: bool) -> Any:
    """Rows strictly past the cursor in the walking direction."""
    if len(cursor.values) != len(key):
        raise ValueError(f"a page cursor of sort {cursor.sort!r} does not fit this sort")
    values = [literal(_parse(column, value), column.type)
              for column, value in zip(key, cursor.values, strict=True)]
    if len(key) == 1:
        return key[0] < values[0] if descending else key[0] > values[0]
    return row(*key) < row(*values) if descending else row(*key) > row(*values)


def _parse(column: Any, value: str) -> Any:
    if column.name in ("updated_at", "created_at"):
        return datetime.fromisoformat(value)
    if column.name in ("severity_rank", "analysis_count", "cost_nano_usd"):
        return int(value)
    return value


def _cursor(sort: IncidentSort, descending: bool, mapping: Any) -> PageCursor:
    values = tuple(
        mapping[column.name].isoformat() if isinstance(mapping[column.name], datetime)
        else str(mapping[column.name])
        for column in SORT_KEYS[sort]
    )
    return PageCursor(sort=sort, values=values, descending=descending)


def _summary(mapping: Any) -> IncidentSummary:
    return IncidentSummary(
        incident_id=mapping["incident_id"],
        title=mapping["title"],
        latest_severity=mapping["latest_severity"],
        analysis_count=mapping["analysis_count"],
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
        cost_usd=Decimal(mapping["cost_nano_usd"]) / NANOS_PER_USD,
    )


def find_incidents(connection: Connection, typed: str, limit: int = 10) -> list[IncidentSummary]:
    """Incidents for a typed id or words: the exact id, then ids starting with it, then text.

    The id lookups walk the unique index (as typed, then upper-cased: ids are usually
    upper-case); the words go through the text filter, newest first.
    """
    typed = typed.strip()
    if not typed:
        return []
    table = table_of(Incident)
    incidents = table.c
    found: dict[str, IncidentSummary] = {}
    for candidate in dict.fromkeys((typed, typed.upper())):
        exact = connection.execute(
            select(table).where(incidents.incident_id == candidate)).mappings().first()
        if exact is not None:
            found.setdefault(exact["incident_id"], _summary(exact))
    for candidate in dict.fromkeys((typed, typed.upper())):
        # One bound pattern (not `:typed || '%'`): PostgreSQL then plans it as a constant
        # prefix and walks ix_incidents_id_pattern.
        prefixed = select(table).where(
            incidents.incident_id.like(_like_escaped(candidate) + "%", escape="/"))
        if connection.dialect.name == "sqlite":
            # A range the unique index serves (SQLite's LIKE cannot use it).
            prefixed = prefixed.where(incidents.incident_id >= candidate,
                                      incidents.incident_id < candidate + "\U0010ffff")
        prefixed = prefixed.order_by(incidents.incident_id).limit(limit)
        for mapping in connection.execute(prefixed).mappings():
            found.setdefault(mapping["incident_id"], _summary(mapping))
    if len(found) < limit:
        for summary in incidents_page(connection, query=typed, limit=limit).rows:
            found.setdefault(summary.incident_id, summary)
    return list(found.values())[:limit]


def _like_escaped(text_value: str) -> str:
    """text_value with LIKE's wildcards and the escape character itself escaped by '/'."""
    return text_value.replace("/", "//").replace("%", "/%").replace("_", "/_")


def count_incidents(connection: Connection, query: str | None = None,
                    excluded: Collection[str] = ()) -> int:
    """How many incidents there are, or how many match the text filter, leaving out the
    `excluded` ids."""
    table = table_of(Incident)
    statement = select(func.count()).select_from(table)
    conditions = filter_conditions(connection, query)
    if excluded:
        conditions = [*conditions, table.c.incident_id.not_in(sorted(excluded))]
    if conditions:
        statement = statement.where(*conditions)
    return int(connection.execute(statement).scalar_one())


def incident_detail(connection: Connection, incident_id: str) -> IncidentDetail | None:
    """An incident's full text, or None when there is no such incident."""
    table = table_of(Incident)
    found = connection.execute(
        select(table).where(table.c.incident_id == incident_id)
    ).mappings().first()
    if found is None:
        return None
    unreadable = None
    try:
        description = open_stored(connection, "incidents", "description", found["incident_id"],
                                  found["description"], found["key_id"])
        findings = open_stored(connection, "incidents", "initial_findings",
                               found["incident_id"], found["initial_findings"], found["key_id"])
    except KeyUnavailable as error:
        description, findings, unreadable = "", "", str(error)
    return IncidentDetail(
        incident_id=found["incident_id"],
        title=found["title"],
        description=description,
        initial_findings=findings,
        created_at=found["created_at"],
        updated_at=found["updated_at"],
        unreadable=unreadable,
    )


def opened_row(connection: Connection, row: Any) -> SimpleNamespace:
    """A row of analyses (and optionally its incident's text) with the sealed columns opened:
    analysis_json as JSON text (a stand-in naming the problem when it cannot be opened),
    description and initial_findings as text. Attribute access as on the row."""
    values = dict(row._mapping)
    if "analysis_json" in values:
        document, _problem = analysis_document(connection, values)
        values["analysis_json"] = json.dumps(document)
    for column in ("description", "initial_findings"):
        if column in values:
            values[column] = open_stored(connection, "incidents", column, values["incident_id"],
                                         values[column], None)
    return SimpleNamespace(**values)


def open_stored(connection: Connection, table: str, column: str, row_key: str, stored: str,
                key_id: str | None) -> str:
    """The clear text of a column value: opened with the store's cipher when sealed, as stored
    when it is clear text (a row from before encryption, or one that an upsert sealed only in
    part during `keys encrypt-store`); KeyUnavailable (one line naming row and key) when a
    sealed value cannot be opened."""
    if not is_sealed(stored):
        return stored
    cipher = cipher_of(connection)
    if cipher is None:
        raise KeyUnavailable(f"{table}.{column} of {row_key}: sealed with data key "
                             f"{key_id or '?'}, and this store was opened without its keyring")
    return cipher.open_text(table, column, row_key, stored)


def analysis_document(connection: Connection, mapping: Any) -> tuple[dict[str, Any], str | None]:
    """An analysis row's JSON (the row needs analysis_id and analysis_json), or a stand-in
    naming the problem when it cannot be opened, with that problem."""
    try:
        opened = open_stored(connection, "analyses", "analysis_json", mapping["analysis_id"],
                             mapping["analysis_json"], mapping.get("key_id"))
    except KeyUnavailable as error:
        return {"unreadable": str(error)}, str(error)
    return json.loads(opened), None


def analyses_of(connection: Connection, incident_id: str) -> list[AnalysisRecord]:
    """Every analysis of an incident, newest first, with the usage of the call behind it."""
    table = table_of(Analysis)
    analyses = table.c
    runs = table_of(RunMetadata).c
    usage = (
        select(
            runs.analysis_id,
            func.sum(runs.input_tokens).label("input_tokens"),
            func.sum(runs.output_tokens).label("output_tokens"),
            func.sum(runs.cost_usd).label("cost_usd"),
        )
        .where(runs.incident_id == incident_id, runs.kind == "chat")
        .group_by(runs.analysis_id)
        .subquery()
    )
    statement = (
        select(table, usage.c.input_tokens, usage.c.output_tokens, usage.c.cost_usd)
        .outerjoin(usage, usage.c.analysis_id == analyses.analysis_id)
        .where(analyses.incident_id == incident_id)
        .order_by(analyses.created_at.desc(), analyses.id.desc())
    )
    records = []
    for r in connection.execute(statement).mappings():
        document, unreadable = analysis_document(connection, r)
        records.append(AnalysisRecord(
            pk=r["id"],
            analysis_id=r["analysis_id"],
            incident_id=r["incident_id"],
            model_name=r["model_name"],
            created_at=r["created_at"],
            analysis=document,
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cost_usd=_decimal(r["cost_usd"]),
            severity=r["severity"],
            unreadable=unreadable,
        ))
    return records


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def usage_totals(
    connection: Connection, by: str, *, since: datetime | None = None, limit: int | None = None
) -> list[UsageTotal]:
    """Tokens and cost summed by "model", "incident" or "kind", most expensive first."""
    runs = table_of(RunMetadata).c
    key = {"model": runs.model_name, "incident": runs.incident_id, "kind": runs.kind}[by]
    cost = func.coalesce(func.sum(runs.cost_usd), 0)
    statement = (
        select(
            key.label("key"),
            func.count().label("calls"),
            func.sum(runs.input_tokens),
            func.sum(runs.output_tokens),
            func.sum(runs.total_tokens),
            cost.label("cost"),
            func.sum(case((runs.cost_usd.is_(None), 1), else_=0)),
        )
        .where(key.is_not(None))
        .group_by(key)
        .order_by(cost.desc(), func.sum(runs.total_tokens).desc())
    )
    if since is not None:
        statement = statement.where(runs.start_time >= since)
    if limit is not None:
        statement = statement.limit(limit)
    return [
        UsageTotal(str(k), int(calls), int(i or 0), int(o or 0), int(t or 0),
                   Decimal(str(c or 0)), int(unpriced or 0))
        for k, calls, i, o, t, c, unpriced in connection.execute(statement)
    ]


def usage_by_day(connection: Connection, days: int = 30, *, today: date | None = None
                 ) -> list[UsageByDay]:
    """Calls, tokens and cost per UTC day over the last `days` days, every day present."""
    runs = table_of(RunMetadata).c
    end = today or datetime.now(UTC).date()
    first = end - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    if connection.dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", runs.start_time), "YYYY-MM-DD")
    else:
        day = func.substr(runs.start_time, 1, 10)
    statement = (
        select(day.label("day"), func.count(), func.sum(runs.total_tokens),
               func.coalesce(func.sum(runs.cost_usd), 0))
        .where(runs.start_time >= since)
        .group_by(day)
    )
    found = {str(d): (int(n), int(t or 0), Decimal(str(c))) for d, n, t, c in
             connection.execute(statement)}
    result = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        calls, tokens, cost = found.get(current.isoformat(), (0, 0, Decimal(0)))
        result.append(UsageByDay(current, calls, tokens, cost))
    return result


def totals(connection: Connection) -> dict[str, Any]:
    """Counts of incidents, analyses, calls and the total cost."""
    runs = table_of(RunMetadata).c
    incidents = connection.execute(select(func.count()).select_from(table_of(Incident)))
    analyses = connection.execute(select(func.count()).select_from(table_of(Analysis)))
    calls, cost = connection.execute(
        select(func.count(), func.coalesce(func.sum(runs.cost_usd), 0))
    ).one()
    return {
        "incidents": int(incidents.scalar_one()),
        "analyses": int(analyses.scalar_one()),
        "model_calls": int(calls),
        "cost_usd": Decimal(str(cost)),
    }


def severity_stored(connection: Connection, severity: str) -> bool:
    """Whether some analysis carries this severity (stored in lower case)."""
    analyses = table_of(Analysis)
    found = connection.execute(select(analyses.c.id).where(
        analyses.c.severity == severity.strip().lower()[:32]).limit(1)).first()
    return found is not None


def incidents_new_since(connection: Connection, analysis_pk: int) -> int:
    """How many incidents got their first analysis after analysis `analysis_pk`."""
    analyses = table_of(Analysis)
    earlier = analyses.alias("earlier")
    statement = select(func.count(func.distinct(analyses.c.incident_id))).where(
        analyses.c.id > analysis_pk,
        ~select(earlier.c.id).where(earlier.c.incident_id == analyses.c.incident_id,
                                    earlier.c.id <= analysis_pk).exists(),
    )
    return int(connection.execute(statement).scalar_one())


def latest_analysis_pk(connection: Connection) -> int:
    """The highest analysis primary key, 0 for an empty store."""
    found = connection.execute(select(func.max(table_of(Analysis).c.id))).scalar_one()
    return int(found or 0)


def analysis_times(connection: Connection, analysis_ids: list[str]) -> dict[str, datetime]:
    """When each of these stored analyses was made (its created_at), by analysis_id."""
    analyses = table_of(Analysis).c
    found: dict[str, datetime] = {}
    for start in range(0, len(analysis_ids), 500):
        chunk = analysis_ids[start : start + 500]
        rows = connection.execute(select(analyses.analysis_id, analyses.created_at)
                                  .where(analyses.analysis_id.in_(chunk)))
        found.update({analysis_id: _aware(moment) for analysis_id, moment in rows})
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
