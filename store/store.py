"""The Store facade: plain synchronous verbs over the database; sessions never leave store/."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from store.access.roles import Action, Actor
from store.audit import Anchor, AuditEntry, AuditLog, ChainReport, Outcome
from store.backup.entries import incident_body, restriction_body, runs_body
from store.backup.mirrors import journal_of
from store.backup.saving import save_journalled
from store.db import queries
from store.db.engine import (
    make_engine,
    normalise_url,
    read_connection,
    run_write,
    sqlite_path,
    write_transaction,
)
from store.db.migrate import upgrade
from store.db.writes import write_batch
from store.errors import AccessDenied, RecordError, StoreError, StoreUnavailable
from store.ingest.reader import chunked, with_next
from store.ingest.records import Limits, PreparedSave, prepare, utc_now
from store.locations import backups_directory, database_url
from store.redact import redact_url, safe_reason, secrets_of_url
from store.schemas import (
    CACHE_NAMESPACES,
    DEFAULT_SIMILAR_K,
    SEVERITY_SCALE,
    AnalysisIn,
    AnalysisRecord,
    IncidentDetail,
    IncidentIn,
    IncidentPage,
    IncidentSort,
    IncidentSummary,
    PageCursor,
    SaveResult,
    SimilarResult,
    StoreSummary,
    UsageByDay,
    UsageTotal,
)
from store.settings import Settings

if TYPE_CHECKING:
    from store.access import UserRow
    from store.analyze import AnalysisRunner
    from store.backup.codec import BodySealer
    from store.backup.journal import ForgetMark
    from store.cache import Cache
    from store.crypto import StoreCipher
    from store.protection import CheckReport, KeysStatus, PurgeCandidate, PurgeReport
    from store.vectors.filler import FillProgress
    from store.vectors.maintenance import VerifyReport
    from store.vectors.search import SimilarSearch
    from store.vectors.service import VectorService

log = logging.getLogger("incidex.store")
# What a restricted incident's title reads as for those who may not read it.
RESTRICTED_TITLE = "(restricted)"


class Store:
    """Everything incidex keeps, behind plain verbs that return small typed objects."""

    def __init__(self, settings: Settings, engine: Engine, actor: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.audit = AuditLog(settings, engine)
        self._actor_name = actor
        self._actor: Actor | None = None
        self.limits = Limits(settings.max_text_chars, settings.max_analysis_bytes,
                             settings.max_document_bytes)
        self.backups = backups_directory(settings)
        self.journal = journal_of(settings)
        self._cache: Cache | None = None
        self._cache_lock = threading.Lock()
        self._vectors: VectorService | None = None
        self._search: SimilarSearch | None = None
        self.cipher = _open_cipher(settings, engine)
        self.journal.sealer = _journal_sealer(self.cipher)

    @classmethod
    def open(cls, settings: Settings, *, create: bool = True, actor: str | None = None) -> Store:
        """Open (creating or upgrading) the store the settings name; StoreUnavailable if not.

        With create=False only an existing store opens: a mistyped data directory or database
        is an error, not a new empty store. Every verb runs for `actor` (default: the OS user
        on SQLite, the connection's database role on PostgreSQL), resolved once here."""
        url = database_url(settings)
        if not create:
            _require_database_file(url)
        engine = make_engine(url, busy_timeout_seconds=settings.busy_timeout_seconds)
        try:
            if not create:
                _require_schema(engine, url)
            upgrade(engine)
        except (SQLAlchemyError, OSError) as error:
            engine.dispose()
            reason = safe_reason(_first_line(error), secrets=secrets_of_url(url))
            raise StoreUnavailable(f"cannot open the store at {redact_url(url)}: {reason}"
                                   ) from None
        opened = cls(settings, engine, actor)
        try:
            opened.actor  # noqa: B018 - resolve (and on a new store, claim) the identity now
        except BaseException:
            engine.dispose()
            raise
        opened.sweep_stale_temps()
        return opened

    # Who is acting -------------------------------------------------------------------------

    @property
    def actor(self) -> Actor:
        """Who this store's verbs run for (the first actor of a store with no users is admin)."""
        if self._actor is None:
            self._actor = self._resolve_actor()
        return self._actor

    def refresh_actor(self) -> Actor:
        """Resolve the actor again (a long-lived process: a role may have changed since)."""
        self._actor = None
        return self.actor

    def _resolve_actor(self) -> Actor:
        from store.access import directory
        from store.audit import AuditEvent

        name = self._actor_name or directory.current_identity(self.engine)
        with read_connection(self.engine) as connection:
            known = directory.actor_named(connection, name)
            if known.role is not None or directory.has_users(connection):
                return known

        def claim(connection: Any) -> Actor:
            if directory.claim_if_first(connection, name):
                self.audit.record_in(connection, AuditEvent(
                    name, "role_change", detail=f"{name} became admin (creator of the store)"))
            return directory.actor_named(connection, name)

        return run_write(self.engine, claim)

    def record_event(self, action: str, *, incident_id: str | None = None,
                     analysis_id: str | None = None, outcome: Outcome = "allowed",
                     detail: str = "", connection: Any = None) -> AuditEntry:
        """Append an event to the audit log for this store's actor (purges, key operations,
        backups call it). With `connection` (a write transaction) the event commits with the
        caller's work; the detail is a short line, never incident text."""
        if connection is None:
            return self.audit.record(self.actor.name, action, incident_id=incident_id,
                                     analysis_id=analysis_id, outcome=outcome, detail=detail)
        from store.audit import AuditEvent

        return self.audit.record_in(connection, AuditEvent(
            self.actor.name, action, incident_id, analysis_id, outcome, detail))

    def require(self, action: Action, *, incident_id: str | None = None) -> None:
        """Raise AccessDenied (and audit the refusal) unless the actor may do action."""
        if self.actor.may(action):
            return
        self._deny(action, incident_id)

    def _deny(self, action: Action, incident_id: str | None = None) -> None:
        self.record_event(str(action), incident_id=incident_id, outcome="denied",
                          detail=f"role {self.actor.role or 'none'}")
        target = f"incident {incident_id!r}" if incident_id else None
        raise AccessDenied(self.actor.describe(), str(action), target)

    def sweep_stale_temps(self) -> int:
        """Remove temp files that killed writers left (backups, index snapshots); how many."""
        from store.backup.snapshots import temp_folders
        from store.fileio import sweep_stale_temps
        from store.locations import index_directory

        return sum(sweep_stale_temps(folder) for folder in
                   (*temp_folders(self.backups), index_directory(self.settings)))

    @property
    def vectors(self) -> VectorService:
        """Embedding and the vector index, set up on first use (numpy and FAISS load then)."""
        with self._cache_lock:
            return self._vector_service()

    @property
    def cache(self) -> Cache:
        """The cache in front of paid and slow calls (memory, then Redis or disk)."""
        with self._cache_lock:
            return self._cache_instance()

    def _vector_service(self) -> VectorService:
        if self._vectors is None:
            from store.vectors.service import VectorService

            self._vectors = VectorService(self.settings, self.engine,
                                          cache_provider=lambda: self.cache)
        return self._vectors

    def _cache_instance(self) -> Cache:
        if self._cache is None:
            from store.cache import make_cache

            self._cache = make_cache(self.settings)
        return self._cache

    def close(self) -> None:
        """Write the index snapshot if it changed, make the journal's last commit lines
        durable, anchor the audit log if this process wrote to it, flush cache stats, release
        connections."""
        try:
            self.journal.sync()
        except OSError as error:
            log.warning("journal not synced: %s", error.strerror)
        try:
            self.audit.anchor_if_written()
        except (OSError, StoreError, SQLAlchemyError) as error:
            log.warning("audit head not anchored: %s", error)
        try:
            if self._vectors is not None:
                self._vectors.snapshot()
        except OSError as error:
            log.warning("index snapshot not written: %s", error.strerror)
        if self._vectors is not None:
            self._vectors.close()
        if self._cache is not None:
            self._cache.close()
        self.cipher.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Users, restrictions and the audit log ------------------------------------------------

    def add_user(self, name: str, role: str, teams: Iterable[str] | str = (),
                 can_purge: bool = False) -> UserRow:
        """Give a user (OS user or database role) a role, teams and the purge permission;
        audited as a role change. Admins only."""
        from store.access import directory
        from store.audit import AuditEvent

        self.require(Action.MANAGE_USERS)

        def put(connection: Any) -> UserRow:
            row = directory.put_user(connection, name, role, teams, can_purge, self.actor.name)
            team = ",".join(sorted(row.teams)) or "-"
            self.audit.record_in(connection, AuditEvent(
                self.actor.name, "role_change",
                detail=f"{row.name}: role {row.role}, teams {team}, purge {row.can_purge}"))
            return row

        return run_write(self.engine, put)

    def users(self) -> list[UserRow]:
        """Every user of the store with their role and teams. Admins only."""
        from store.access import directory

        self.require(Action.MANAGE_USERS)
        with read_connection(self.engine) as connection:
            return directory.list_users(connection)

    def restrict_incident(self, incident_id: str, teams: Iterable[str] | str) -> None:
        """Restrict an incident's text to named teams (no teams lifts it); audited. Leads and
        admins; a lead only for an incident they may read."""
        from store.access import directory
        from store.access.roles import normalise_teams
        from store.audit import AuditEvent

        self.require(Action.RESTRICT, incident_id=incident_id)
        self._require_readable(incident_id, Action.RESTRICT)
        team_set = normalise_teams(teams if isinstance(teams, str) else list(teams))

        def put(connection: Any) -> None:
            directory.set_restriction(connection, incident_id, team_set, self.actor.name)
            shown = ",".join(sorted(team_set)) or "nobody (lifted)"
            self.audit.record_in(connection, AuditEvent(
                self.actor.name, "restrict", incident_id, detail=f"restricted to {shown}"))

        run_write(self.engine, put)
        self.journal_entries([restriction_body(incident_id, team_set, self.actor.name)])

    def audit_entries(self, *, actor: str | None = None, incident_id: str | None = None,
                      since: datetime | None = None, limit: int | None = None
                      ) -> list[AuditEntry]:
        """Audit log entries, oldest first, filtered by actor, incident and time. Leads and
        admins."""
        self.require(Action.READ_AUDIT)
        return self.audit.entries(actor=actor, incident_id=incident_id, since=since, limit=limit)

    def verify_audit(self) -> ChainReport:
        """Check the audit log: seqs, links, hashes, anchors, times. Leads and admins."""
        self.require(Action.READ_AUDIT)
        return self.audit.verify()

    def anchor_audit(self) -> Anchor | None:
        """Sign the audit log's head into the anchor file now. Leads and admins."""
        self.require(Action.READ_AUDIT)
        return self.audit.anchor()

    def _require_readable(self, incident_id: str, action: Action) -> None:
        """Refuse (audited) when the incident is restricted to teams the actor may not read."""
        from store.access import directory

        if self.actor.role == "admin":
            return
        with read_connection(self.engine) as connection:
            teams = directory.restrictions(connection, [incident_id]).get(incident_id)
        if teams is not None and not self.actor.may_read_restricted(teams):
            self._deny(action, incident_id)

    # Saving -------------------------------------------------------------------------------

    def save_analysis(self, record: AnalysisIn, label: str = "record") -> SaveResult:
        """Save one analysis (incident upsert, analysis, run metadata) in one transaction."""
        return self.save_many([(label, record)])[0]

    def save_many(self, records: Iterable[tuple[str, AnalysisIn]]) -> list[SaveResult]:
        """Save records in batches; each is saved whole, reported a duplicate, or refused."""
        results: list[SaveResult] = []
        for chunk, following in with_next(chunked(records, self.settings.save_batch_size)):
            results.extend(self.save_batch(
                chunk, following=[record for _label, record in following or ()]))
        return results

    def save_batch(self, chunk: list[tuple[str, AnalysisIn]], *,
                   following: Sequence[AnalysisIn] = ()) -> list[SaveResult]:
        """Save one batch of labelled records in one transaction (a failing batch falls back
        to one transaction per record); one result per record, in order. One audit event
        per batch (not per record) keeps saving fast. `following` are the records the next
        call will save: their vectors are begun in a helper process while this batch is
        written."""
        self.require(Action.SAVE)
        now = utc_now()
        outcomes: list[SaveResult | PreparedSave] = []
        keyed_hash = self.cipher.index.keyed_hash if self.cipher.sealing else None
        for label, record in chunk:
            try:
                outcomes.append(prepare(record, label, self.limits, now, keyed_hash))
            except RecordError as error:
                outcomes.append(SaveResult.failed(record.incident.incident_id, str(error)))
        outcomes = self._refuse_restricted(outcomes)
        prepared = [item for item in outcomes if isinstance(item, PreparedSave)]
        if self.cipher.sealing and prepared:
            self.cipher.seal_batch(prepared)
        embed_runs = self.vectors.attach_vectors(prepared)
        if following:
            self.vectors.start_vectors(following)
        written = save_journalled(
            self.journal, prepared, now,
            write=lambda: write_batch(self.engine, prepared, embed_runs),
            stored_ids=self.stored_analysis_ids)
        saved = [(result.pk, item) for result, item in zip(written, prepared, strict=True)
                 if result.status == "saved" and result.pk is not None]
        self.vectors.added(saved)
        stream = iter(written)
        results = [item if isinstance(item, SaveResult) else next(stream) for item in outcomes]
        self._audit_save(results)
        return results

    def _refuse_restricted(self, outcomes: list[SaveResult | PreparedSave]
                           ) -> list[SaveResult | PreparedSave]:
        """Records for restricted incidents the actor may not read become errors (a save would
        overwrite their text); one denied audit event names how many."""
        from store.access import directory

        ids = [item.incident_id for item in outcomes if isinstance(item, PreparedSave)]
        if self.actor.role == "admin" or not ids:
            return outcomes
        with read_connection(self.engine) as connection:
            found = directory.restrictions(connection, ids)
        refused = {incident_id for incident_id, teams in found.items()
                   if not self.actor.may_read_restricted(teams)}
        if not refused:
            return outcomes
        self.record_event("save", incident_id=next(iter(refused)) if len(refused) == 1 else None,
                          outcome="denied", detail=f"{len(refused)} restricted incidents")
        return [SaveResult.failed(item.incident_id, f"{item.label}: incident.incident_id: "
                                  f"access denied: {self.actor.describe()} may not save on "
                                  "a restricted incident")
                if isinstance(item, PreparedSave) and item.incident_id in refused else item
                for item in outcomes]

    def _audit_save(self, results: list[SaveResult]) -> None:
        if not results:
            return
        counts = {status: sum(r.status == status for r in results)
                  for status in ("saved", "duplicate", "error")}
        only = {r.incident_id for r in results}
        self.record_event("save", incident_id=only.pop() if len(only) == 1 else None,
                          detail=f"{counts['saved']} saved, {counts['duplicate']} duplicate, "
                                 f"{counts['error']} failed")

    def stored_analysis_ids(self, analysis_ids: list[str]) -> set[str]:
        """Which of these analyses the database holds already (they are not journaled again)."""
        with read_connection(self.engine) as connection:
            return set(queries.analysis_times(connection, analysis_ids))

    def analysis_runner(self, model: str | None = None) -> AnalysisRunner:
        """A runner of new analyses with the chat model (default INCIDEX_CHAT_MODEL)."""
        from store.analyze import AnalysisRunner

        self.require(Action.SAVE)
        return AnalysisRunner(self, model)

    def register_incidents(self, incidents: list[IncidentIn]) -> list[bool]:
        """Add incidents without an analysis (for `incidex analyze --unanalysed`)."""
        from store.analyze import register_incidents

        self.require(Action.SAVE)
        now = utc_now()
        added = register_incidents(self.engine, incidents, now=now)
        self.journal_entries([incident_body(incident, now)
                              for incident, new in zip(incidents, added, strict=True) if new])
        return added

    def record_calls(self, calls: Any, incident_id: str, analysis_id: str | None) -> None:
        """Meter model calls not written with an analysis (failed, repaired, repeated): one
        usage row each, journaled."""
        from store.analyze.metering import record_calls

        rows = record_calls(self.engine, calls, incident_id, analysis_id)
        if rows:
            self.journal_entries([runs_body(rows)])

    def journal_entries(self, bodies: list[dict[str, Any]]) -> None:
        """Journal committed writes other than analyses (store.backup.entries), as one
        settled batch; a failure only warns (the next snapshot holds them)."""
        if bodies:
            self._journal_or_warn(lambda: self.journal.append_settled(bodies, utc_now()),
                                  "journal entry not written (%s); a restore to a time after "
                                  "it and before the next snapshot lacks it")

    def unanalysed_incident_ids(self, limit: int | None = None) -> list[str]:
        """Incidents that have no analysis yet, oldest first."""
        from store.analyze import unanalysed_incident_ids

        self.require(Action.LIST)
        return unanalysed_incident_ids(self.engine, limit)

    # Reading ------------------------------------------------------------------------------

    def incidents_page(
        self,
        *,
        sort: IncidentSort = "updated",
        descending: bool = True,
        after: PageCursor | None = None,
        before: PageCursor | None = None,
        from_end: bool = False,
        limit: int = 100,
        query: str | None = None,
    ) -> IncidentPage:
        """A page of incidents, largest (newest) first unless not descending, by keyset.
        Restricted incidents the actor may not read show no title (and are left out of a
        text-filtered page, whose match would reveal their text)."""
        self.require(Action.LIST)
        with read_connection(self.engine) as connection:
            page = queries.incidents_page(connection, sort=sort, descending=descending,
                                          after=after, before=before, from_end=from_end,
                                          limit=limit, query=query)
            rows = self._screened(connection, page.rows, query)
        return page if rows is page.rows else IncidentPage(rows, page.next_cursor,
                                                           page.previous_cursor)

    def find_incidents(self, typed: str, limit: int = 10) -> list[IncidentSummary]:
        """Incidents for a typed id, id prefix or words: exact id first (the jump prompt)."""
        self.require(Action.LIST)
        with read_connection(self.engine) as connection:
            found = queries.find_incidents(connection, typed, limit)
            return self._screened(connection, found, typed)

    def _screened(self, connection: Any, rows: list[IncidentSummary], query: str | None
                  ) -> list[IncidentSummary]:
        """Rows of restricted incidents the actor may not read: title withheld, or left out
        when a text filter chose the rows (rows itself when nothing is restricted)."""
        from dataclasses import replace

        from store.access import directory

        if self.actor.role == "admin" or not rows:
            return rows
        found = directory.restrictions(connection, [row.incident_id for row in rows])
        hidden = {incident_id for incident_id, teams in found.items()
                  if not self.actor.may_read_restricted(teams)}
        if not hidden:
            return rows
        if query and query.strip():
            return [row for row in rows if row.incident_id not in hidden]
        return [replace(row, title=RESTRICTED_TITLE) if row.incident_id in hidden else row
                for row in rows]

    def count_incidents(self, query: str | None = None) -> int:
        """How many incidents there are, or how many match the text filter: the rows the list
        shows, so restricted incidents the actor may not read count only without a filter
        (a filtered count that held them would tell whether their hidden text matches)."""
        from store.access import directory

        self.require(Action.LIST)
        with read_connection(self.engine) as connection:
            filtered = bool(query and query.strip())
            hidden = directory.hidden_incidents(connection, self.actor) if filtered else set()
            return queries.count_incidents(connection, query, excluded=hidden)

    def incident(self, incident_id: str) -> IncidentDetail | None:
        """One incident's full text: a sensitive read, audited (analysts and up; a restricted
        incident only for its teams' leads and admins)."""
        self._require_sensitive_read(incident_id)
        with read_connection(self.engine) as connection:
            detail = queries.incident_detail(connection, incident_id)
        if detail is not None:
            self.record_event("read_incident", incident_id=incident_id)
        return detail

    def analyses(self, incident_id: str) -> list[AnalysisRecord]:
        """Every analysis of one incident, newest first: a sensitive read, audited."""
        self._require_sensitive_read(incident_id)
        with read_connection(self.engine) as connection:
            found = queries.analyses_of(connection, incident_id)
        if found:
            self.record_event("read_analyses", incident_id=incident_id,
                              detail=f"{len(found)} analyses")
        return found

    def open_incident(self, incident_id: str
                      ) -> tuple[IncidentDetail | None, list[AnalysisRecord]]:
        """An incident's text and every analysis of it, as the analysis view opens it: one
        check and one audit event for both (opening is a sensitive read)."""
        self._require_sensitive_read(incident_id)
        with read_connection(self.engine) as connection:
            detail = queries.incident_detail(connection, incident_id)
            found = queries.analyses_of(connection, incident_id) if detail is not None else []
        if detail is not None:
            self.record_event("open", incident_id=incident_id, detail=f"{len(found)} analyses")
        return detail, found

    def authorise_export(self, incident_id: str, form: str) -> None:
        """Allow (and audit) writing out or copying what the actor has read of an incident:
        `form` says how ('analysis json file', 'clipboard copy'). AccessDenied otherwise."""
        self.require(Action.EXPORT, incident_id=incident_id)
        self._require_readable(incident_id, Action.EXPORT)
        self.record_event("export", incident_id=incident_id, detail=form)

    def _require_sensitive_read(self, incident_id: str) -> None:
        self.require(Action.READ, incident_id=incident_id)
        self._require_readable(incident_id, Action.READ)

    def usage_by_model(self, since: datetime | None = None) -> list[UsageTotal]:
        """Tokens and cost per model."""
        self.require(Action.USAGE)
        with read_connection(self.engine) as connection:
            return queries.usage_totals(connection, "model", since=since)

    def usage_by_incident(self, limit: int = 20, since: datetime | None = None
                          ) -> list[UsageTotal]:
        """The most expensive incidents."""
        self.require(Action.USAGE)
        with read_connection(self.engine) as connection:
            return queries.usage_totals(connection, "incident", since=since, limit=limit)

    def usage_by_day(self, days: int = 30, today: date | None = None) -> list[UsageByDay]:
        """Tokens and cost per UTC day over the `days` days ending today (or `today`)."""
        self.require(Action.USAGE)
        with read_connection(self.engine) as connection:
            return queries.usage_by_day(connection, days, today=today)

    @property
    def search(self) -> SimilarSearch:
        """Similar-incident search over this store's vectors and cache, set up on first use."""
        with self._cache_lock:
            if self._search is None:
                from store.vectors.search import SimilarSearch

                self._search = SimilarSearch(self.engine, self._vector_service(),
                                             lambda: self.cache,
                                             self.settings.similar_seen_min_score)
            return self._search

    def similar(self, text: str | None = None, incident_id: str | None = None,
                k: int = DEFAULT_SIMILAR_K, severity: list[str] | None = None,
                since: datetime | None = None, until: datetime | None = None) -> SimilarResult:
        """Incidents like a typed text or a stored incident: best first, one row each; never a
        restricted incident the actor may not read. Audited: hits carry titles and IOCs."""
        self.require(Action.SIMILAR, incident_id=incident_id)
        if incident_id is not None:
            self._require_readable(incident_id, Action.SIMILAR)
        hidden, scope = self._similar_scope()
        result = self.search.similar(text, incident_id, k, severity, since, until,
                                     hidden=hidden, scope=scope)
        self.record_event("similar", incident_id=incident_id,
                          detail=f"{len(result.hits)} hits" + (" for a typed text" if text else ""))
        return result

    def known_similar_counts(self, incident_ids: list[str]) -> dict[str, int]:
        """How many similar incidents each one has, where that is already known (cached)."""
        self.require(Action.LIST)
        return self.search.known_counts(incident_ids, scope=self._similar_scope()[1])

    def warm_similar(self, incident_ids: list[str], stop: threading.Event | None = None) -> int:
        """Fill the cache with similar results for these incidents until `stop` is set."""
        self.require(Action.SIMILAR)
        hidden, scope = self._similar_scope()
        return self.search.warm(incident_ids, stop, hidden=hidden, scope=scope)

    def _similar_scope(self) -> tuple[frozenset[str], str]:
        """The restricted incidents hidden from the actor, and the cache scope naming them
        with the actor's role and teams (a cached answer is never served to another scope)."""
        import hashlib

        from store.access import directory

        with read_connection(self.engine) as connection:
            hidden = frozenset(directory.hidden_incidents(connection, self.actor))
        digest = hashlib.sha256("\n".join(sorted(hidden)).encode()).hexdigest()[:16]
        return hidden, f"{self.actor.cache_scope}:{digest}"

    def cache_stats(self) -> dict[str, Any]:
        """Cache hits, misses, errors, hit rate and the tokens and dollars hits saved
        (shared across processes where the cache keeps shared counters)."""
        from store.cache.stats import ERRORS

        self.require(Action.USAGE)
        stats = self.cache.stats()
        totals = stats.shared if stats.shared is not None else stats.process
        errors = sum(value for (_scope, _namespace, event), value in totals.counts.items()
                     if event == ERRORS)
        return {
            "hits": totals.hits,
            "misses": totals.misses,
            "errors": errors,
            "hit_rate": totals.hit_rate(),
            "tokens_saved": totals.tokens_saved,
            "usd_saved": totals.cost_usd_saved,
            "by_namespace": {namespace: totals.hit_rate(namespace)
                             for namespace in totals.namespaces()},
            "detail": stats.as_dict(),
        }

    def clear_cache(self, namespace: str | None = None) -> int:
        """Remove cached entries (one namespace or all) from every tier; how many.

        StoreError for a namespace the cache does not have, StoreUnavailable when a tier
        (Redis, the disk cache) is down, so its entries could not be removed."""
        if namespace is not None and namespace not in CACHE_NAMESPACES:
            raise StoreError(f"cache clear: unknown namespace {namespace!r} "
                             f"(known: {', '.join(CACHE_NAMESPACES)})")
        self.require(Action.MAINTAIN)
        return self.cache.clear_everywhere(namespace)

    # Keys and purging --------------------------------------------------------------------

    def keys_status(self) -> KeysStatus:
        """Key ids, which is primary, and how many data keys and rows each protects. Admins."""
        from store.protection import keys_status

        self.require(Action.KEYS)
        return keys_status(self.engine, self.cipher)

    def rotate_keys(self) -> str:
        """A new primary key-encryption key; every data key rewrapped with it (fast). Admins;
        audited."""
        from store.protection import rotate_keys

        self.require(Action.KEYS)
        key_id = rotate_keys(self.engine, self.cipher)
        self.record_event("keys_rotate", detail=f"new primary key {key_id}")
        return key_id

    def reencrypt(self, progress: Callable[[int, int], None] | None = None) -> int:
        """New data keys for every incident and its rows resealed; resumable; how many.
        Admins; audited."""
        from store.protection import reencrypt_rows

        self.require(Action.KEYS)
        done = reencrypt_rows(self.engine, self.cipher, progress)
        self.record_event("keys_reencrypt", detail=f"{done} incidents resealed")
        return done

    def check_keys(self, progress: Callable[[int, int], None] | None = None) -> CheckReport:
        """Open every sealed value and unwrap every data key; the problems found. Admins."""
        from store.protection import check_keys

        self.require(Action.KEYS)
        return check_keys(self.engine, self.cipher, progress)

    def retire_key(self, key_id: str) -> str:
        """Move a key-encryption key that wraps nothing out of the keyring; where to. Admins;
        audited."""
        from store.protection import retire_key

        self.require(Action.KEYS)
        moved_to = retire_key(self.cipher, key_id)
        self.record_event("keys_retire", detail=f"key {key_id} retired"[:200])
        return moved_to

    def encrypt_store(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Seal every clear-text row in place (resumable); how many incidents. The journal
        is append-only: its lines written in clear stay as they are (see clear_journal_records).
        Admins; audited."""
        from store.protection import encrypt_store

        self.require(Action.KEYS)
        done = encrypt_store(self.engine, self.cipher, progress)
        self.record_event("keys_encrypt_store", detail=f"{done} incidents sealed")
        return done

    def clear_journal_records(self) -> int:
        """How many journal records hold their body in clear (written before the store
        sealed); they leave with the journal days that hold them (backup retention)."""
        from store.backup.journal import incident_lines, journal_directory

        return sum(found.clear for found in
                   incident_lines(journal_directory(self.backups), None).values())

    def purge_candidates(self, now: datetime | None = None) -> list[PurgeCandidate]:
        """The incidents the retention policy would remove now (for those who maintain the
        store: the list names every due incident, restricted ones too)."""
        from store.protection import retention_candidates

        self.require(Action.MAINTAIN)

        return retention_candidates(self.engine, self.settings.retention_days,
                                    self.settings.retention_days_by_severity, now)

    def forget(self, incident_ids: list[str], reason: str = "forget") -> PurgeReport:
        """Erase these incidents and everything derived from them, data keys included. Only
        for a lead or admin holding the purge permission. Audited one event per incident
        removed, named like its tombstone (the keyed hash of its id, never the id or text),
        with the counts removed."""
        from store.locations import index_directory
        from store.protection import forget_incidents, last_tombstone
        from store.vectors.index import SNAPSHOT_FILE

        if not self.actor.may(Action.PURGE):
            self.record_event(str(Action.PURGE), outcome="denied",
                              detail=f"{reason}: {len(incident_ids)} incidents, role "
                                     f"{self.actor.role or 'none'}, purge {self.actor.can_purge}")
            raise AccessDenied(self.actor.describe(), str(Action.PURGE),
                               f"{len(incident_ids)} incidents")
        if (index_directory(self.settings) / SNAPSHOT_FILE).exists():
            self.vectors.index()  # loaded while the rows still match the snapshot
        after = last_tombstone(self.engine)
        report = forget_incidents(self.engine, self.cipher, self.backups, incident_ids,
                                  reason=reason, remove_vectors=self.remove_vectors,
                                  clear_caches=self._clear_text_caches,
                                  journal_forgets=self._journal_forgets,
                                  actor=self.actor.name)
        self._audit_tombstones(incident_ids, after, reason)
        return report

    def _journal_forgets(self, marks: list[Any]) -> None:
        """Journal a purge's tombstones (a restore past it leaves the incidents out); a
        failure only warns: the next backup settles the journal from the tombstones."""
        self._journal_or_warn(lambda: self.journal.forgotten(marks),
                              "journal forget lines not written (%s); the next backup writes "
                              "them from the tombstones")

    @staticmethod
    def _journal_or_warn(append: Callable[[], object], warning: str) -> None:
        """Journal what is already committed; a disk error only warns (`warning` with %s for
        its reason): the write stands, and backups make up for the line."""
        try:
            append()
        except OSError as error:
            log.warning(warning, error.strerror)

    def _audit_tombstones(self, incident_ids: list[str], after: int, reason: str) -> None:
        """One audit event per tombstone this purge wrote: its hashed id and counts only."""
        from store.protection import tombstones_of

        for stone in tombstones_of(self.engine, self.cipher, incident_ids, after):
            self.record_event(str(Action.PURGE), detail=(
                f"{reason}: tombstone {stone.incident_hash}, {stone.analyses} analyses, "
                f"{stone.embeddings} vectors, {stone.backups} backups, "
                f"{stone.run_metadata} usage rows unlinked")[:200])

    def tombstones_since(self, since: datetime) -> list[ForgetMark]:
        """The purges since a time, as the journal's forget lines carry them."""
        from store.protection.tombstones import tombstones_since

        return tombstones_since(self.engine, since)

    def erase_forgotten(self, marks: list[ForgetMark], *, index: bool,
                        hashes: dict[str, str] | None = None) -> int:
        """In a restored store: erase the rows of the incidents the journal's forget lines
        name (never their data keys: they are gone, and the key database is the live
        store's too); `index`: the store's index snapshot is its own, so it is rewritten
        without their vectors; `hashes`: the ids' keyed hashes, kept between calls. How many
        incidents were erased."""
        from store.locations import index_directory
        from store.protection.purge import compact, erase_forgotten
        from store.vectors.index import SNAPSHOT_FILE

        if index and (index_directory(self.settings) / SNAPSHOT_FILE).exists():
            self.vectors.index()  # loaded while the rows still match the snapshot
        erased, removed = erase_forgotten(self.engine, self.cipher.index.keyed_hash, marks,
                                          hashes)
        if removed and index:
            self.remove_vectors(removed)
        if erased:
            compact(self.engine)
        return erased

    def remove_vectors(self, analysis_pks: list[int]) -> None:
        """Take purged vectors out of the index and rewrite its snapshot without them."""
        import numpy as np

        from store.locations import index_directory

        if self._vectors is None or not self._vectors.index_loaded:
            return
        directory = index_directory(self.settings)
        index = self.vectors.index()
        index.remove(np.array(analysis_pks, dtype=np.int64))
        index.save_snapshot(directory)
        self.sweep_stale_temps()

    def _clear_text_caches(self) -> str | None:
        """Drop the cached results that can quote incident text (similar, chat); the problem
        when a cache tier is down."""
        try:
            for namespace in ("similar", "chat"):
                self.cache.clear_everywhere(namespace)
        except StoreError as error:
            return str(error)
        return None

    def unknown_severities(self, severities: Iterable[str]) -> list[str]:
        """The severities neither on the usual scale nor carried by any stored analysis."""
        unusual = [s for s in severities if s.strip().lower() not in SEVERITY_SCALE]
        if not unusual:
            return []
        with read_connection(self.engine) as connection:
            return [s for s in unusual if not queries.severity_stored(connection, s)]

    def prepare_text_search(self) -> None:
        """Load the PII scrubber and the embedder (their word lists take about a second)."""
        from store.vectors.text import embedding_text

        self.vectors.clean_text("warm up", "", "", {})
        if not getattr(self.vectors.embedder, "remote", True):
            self.vectors.embed_texts([embedding_text("warm up", "", "", {})])

    def refresh_index_snapshot(self) -> bool:
        """Rewrite the vector index snapshot if enough changed (for a background timer)."""
        return self.vectors.snapshot()

    def verify_vectors(self, sample: int = 200) -> VerifyReport:
        """Compare the vector index this process would search with the database, id by id."""
        from store.vectors.maintenance import verify

        self.require(Action.LIST)
        return verify(self.vectors, sample=sample)

    def reindex(self, pending_only: bool = False,
                progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed analyses with the configured embedder and rebuild the index; how many."""
        from store.vectors.maintenance import reindex

        self.require(Action.MAINTAIN)
        return reindex(self.vectors, pending_only=pending_only, progress=progress)

    def fill_pending_vectors(self, *, stop: threading.Event | None = None,
                             progress: Callable[[FillProgress], None] | None = None,
                             follow: bool = False, batch_size: int | None = None) -> int:
        """Embed the analyses saved with their vector pending, a batch a transaction, safely
        beside other fillers (store/vectors/filler.py); following, keep watching for new ones
        until `stop` is set. How many vectors this call wrote. Completes saves: analysts."""
        from store.vectors.filler import FILL_BATCH, fill_pending

        self.require(Action.SAVE)
        return fill_pending(self.vectors, batch_size=batch_size or FILL_BATCH, stop=stop,
                            progress=progress, follow=follow)

    def pending_vector_count(self) -> int:
        """How many analyses wait for a vector (a slow embedder's saves, or an outage, left them
        pending)."""
        from store.vectors.maintenance import pending_count

        return pending_count(self.engine)

    def incidents_new_since(self, analysis_pk: int) -> int:
        """How many incidents were first saved after analysis `analysis_pk` (any process)."""
        with read_connection(self.engine) as connection:
            return queries.incidents_new_since(connection, analysis_pk)

    def latest_analysis_pk(self) -> int:
        """The highest analysis id: a cheap way to notice other processes' saves."""
        with read_connection(self.engine) as connection:
            return queries.latest_analysis_pk(connection)

    def summary(self) -> StoreSummary:
        """Counts for the headless summary."""
        self.require(Action.LIST)
        with read_connection(self.engine) as connection:
            counts = queries.totals(connection)
        url = self.engine.url.render_as_string(hide_password=False)
        return StoreSummary(database_url=redact_url(url), **counts)


def _journal_sealer(cipher: StoreCipher) -> BodySealer:
    """Seals journal bodies with their incidents' data keys (when the store seals)."""
    from store.crypto import JournalSealer

    return JournalSealer(cipher)


def _open_cipher(settings: Settings, engine: Engine) -> StoreCipher:
    """The store's cipher, attached to its engine so that queries and writes find it. The
    store records which blind-index key it uses the first time it opens with one (here, in a
    transaction of its own: never inside a save's), and refuses any other afterwards."""
    from store.crypto import attach_cipher, cipher_from_settings
    from store.crypto.blind_index import index_key_fingerprint
    from store.db.identity import record_index_key, store_identity

    with read_connection(engine) as connection:
        identity = store_identity(connection)
    cipher = cipher_from_settings(settings, identity.store_id,
                                  index_recorded=identity.index_key_fingerprint)
    if identity.index_key_fingerprint is None:
        key = cipher.keyring.index_key()
        assert key is not None  # made when missing
        with write_transaction(engine) as connection:
            recorded = record_index_key(connection, index_key_fingerprint(key))
        cipher = cipher_from_settings(settings, identity.store_id, index_recorded=recorded)
    attach_cipher(engine, cipher)
    return cipher


def _require_database_file(url: str) -> None:
    """A SQLite store's file must exist (connecting would create it)."""
    path = sqlite_path(normalise_url(url))
    if path is None or path.is_file():
        return
    problem = (f"no data directory {path.parent}" if not path.parent.is_dir()
               else f"no store at {path}")
    raise StoreUnavailable(f"{problem} (check --data-dir or INCIDEX_DATA_DIR; `incidex demo` "
                           "or `incidex --save` creates a store)")


def _require_schema(engine: Engine, url: str) -> None:
    """The database must hold an incidex store (an empty database or schema does not)."""
    from sqlalchemy import inspect

    with engine.connect() as connection:
        found = inspect(connection).has_table("alembic_version")
    if not found:
        raise StoreUnavailable(f"no incidex store in {redact_url(url)} (the database is empty; "
                               "`incidex demo` or `incidex --save` creates a store)")


def _first_line(error: BaseException) -> str:
    if isinstance(error, OperationalError) and error.orig is not None:
        error = error.orig
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["Store"]
