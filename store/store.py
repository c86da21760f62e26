"""The Store facade: plain synchronous verbs over the database; sessions never leave store/."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from store.backup.mirrors import journal_of
from store.backup.saving import save_journalled
from store.db import queries
from store.db.engine import make_engine, normalise_url, read_connection, sqlite_path
from store.db.migrate import upgrade
from store.db.writes import write_batch
from store.errors import RecordError, StoreError, StoreUnavailable
from store.ingest.reader import chunked
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
    from store.analyze import AnalysisRunner
    from store.backup.codec import BodySealer
    from store.cache import Cache
    from store.crypto import StoreCipher
    from store.protection import CheckReport, KeysStatus, PurgeCandidate, PurgeReport
    from store.vectors.maintenance import VerifyReport
    from store.vectors.search import SimilarSearch
    from store.vectors.service import VectorService

log = logging.getLogger("incidex.store")


class Store:
    """Everything incidex keeps, behind plain verbs that return small typed objects."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
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
    def open(cls, settings: Settings, *, create: bool = True) -> Store:
        """Open (creating or upgrading) the store the settings name; StoreUnavailable if not.

        With create=False only an existing store opens: a mistyped data directory or database
        is an error, not a new empty store."""
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
        opened = cls(settings, engine)
        opened.sweep_stale_temps()
        return opened

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
        durable, flush cache stats, release connections."""
        try:
            self.journal.sync()
        except OSError as error:
            log.warning("journal not synced: %s", error.strerror)
        try:
            if self._vectors is not None:
                self._vectors.snapshot()
        except OSError as error:
            log.warning("index snapshot not written: %s", error.strerror)
        if self._cache is not None:
            self._cache.close()
        self.cipher.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Saving -------------------------------------------------------------------------------

    def save_analysis(self, record: AnalysisIn, label: str = "record") -> SaveResult:
        """Save one analysis (incident upsert, analysis, run metadata) in one transaction."""
        return self.save_many([(label, record)])[0]

    def save_many(self, records: Iterable[tuple[str, AnalysisIn]]) -> list[SaveResult]:
        """Save records in batches; each is saved whole, reported a duplicate, or refused."""
        results: list[SaveResult] = []
        for chunk in chunked(records, self.settings.save_batch_size):
            results.extend(self.save_batch(chunk))
        return results

    def save_batch(self, chunk: list[tuple[str, AnalysisIn]]) -> list[SaveResult]:
        """Save one batch of labelled records in one transaction (a failing batch falls back
        to one transaction per record); one result per record, in order."""
        now = utc_now()
        outcomes: list[SaveResult | PreparedSave] = []
        keyed_hash = self.cipher.index.keyed_hash if self.cipher.sealing else None
        for label, record in chunk:
            try:
                outcomes.append(prepare(record, label, self.limits, now, keyed_hash))
            except RecordError as error:
                outcomes.append(SaveResult.failed(record.incident.incident_id, str(error)))
        prepared = [item for item in outcomes if isinstance(item, PreparedSave)]
        if self.cipher.sealing and prepared:
            self.cipher.seal_batch(prepared)
        embed_runs = self.vectors.attach_vectors(prepared)
        written = save_journalled(
            self.journal, prepared, now,
            write=lambda: write_batch(self.engine, prepared, embed_runs),
            stored_ids=self.stored_analysis_ids)
        saved = [(result.pk, item) for result, item in zip(written, prepared, strict=True)
                 if result.status == "saved" and result.pk is not None]
        self.vectors.added(saved)
        stream = iter(written)
        return [item if isinstance(item, SaveResult) else next(stream) for item in outcomes]

    def stored_analysis_ids(self, analysis_ids: list[str]) -> set[str]:
        """Which of these analyses the database holds already (they are not journaled again)."""
        with read_connection(self.engine) as connection:
            return set(queries.analysis_times(connection, analysis_ids))

    def analysis_runner(self, model: str | None = None) -> AnalysisRunner:
        """A runner of new analyses with the chat model (default INCIDEX_CHAT_MODEL)."""
        from store.analyze import AnalysisRunner

        return AnalysisRunner(self, model)

    def register_incidents(self, incidents: list[IncidentIn]) -> list[bool]:
        """Add incidents without an analysis (for `incidex analyze --unanalysed`)."""
        from store.analyze import register_incidents

        return register_incidents(self.engine, incidents)

    def unanalysed_incident_ids(self, limit: int | None = None) -> list[str]:
        """Incidents that have no analysis yet, oldest first."""
        from store.analyze import unanalysed_incident_ids

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
        """A page of incidents, largest (newest) first unless not descending, by keyset."""
        with read_connection(self.engine) as connection:
            return queries.incidents_page(connection, sort=sort, descending=descending,
                                          after=after, before=before, from_end=from_end,
                                          limit=limit, query=query)

    def find_incidents(self, typed: str, limit: int = 10) -> list[IncidentSummary]:
        """Incidents for a typed id, id prefix or words: exact id first (the jump prompt)."""
        with read_connection(self.engine) as connection:
            return queries.find_incidents(connection, typed, limit)

    def count_incidents(self, query: str | None = None) -> int:
        """How many incidents there are, or how many match the text filter."""
        with read_connection(self.engine) as connection:
            return queries.count_incidents(connection, query)

    def incident(self, incident_id: str) -> IncidentDetail | None:
        """One incident's full text."""
        with read_connection(self.engine) as connection:
            return queries.incident_detail(connection, incident_id)

    def analyses(self, incident_id: str) -> list[AnalysisRecord]:
        """Every analysis of one incident, newest first."""
        with read_connection(self.engine) as connection:
            return queries.analyses_of(connection, incident_id)

    def usage_by_model(self, since: datetime | None = None) -> list[UsageTotal]:
        """Tokens and cost per model."""
        with read_connection(self.engine) as connection:
            return queries.usage_totals(connection, "model", since=since)

    def usage_by_incident(self, limit: int = 20, since: datetime | None = None
                          ) -> list[UsageTotal]:
        """The most expensive incidents."""
        with read_connection(self.engine) as connection:
            return queries.usage_totals(connection, "incident", since=since, limit=limit)

    def usage_by_day(self, days: int = 30, today: date | None = None) -> list[UsageByDay]:
        """Tokens and cost per UTC day over the `days` days ending today (or `today`)."""
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
        """Incidents like a typed text or a stored incident: best first, one row each."""
        return self.search.similar(text, incident_id, k, severity, since, until)

    def known_similar_counts(self, incident_ids: list[str]) -> dict[str, int]:
        """How many similar incidents each one has, where that is already known (cached)."""
        return self.search.known_counts(incident_ids)

    def warm_similar(self, incident_ids: list[str], stop: threading.Event | None = None) -> int:
        """Fill the cache with similar results for these incidents until `stop` is set."""
        return self.search.warm(incident_ids, stop)

    def cache_stats(self) -> dict[str, Any]:
        """Cache hits, misses, errors, hit rate and the tokens and dollars hits saved
        (shared across processes where the cache keeps shared counters)."""
        from store.cache.stats import ERRORS

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
        return self.cache.clear_everywhere(namespace)

    # Keys and purging --------------------------------------------------------------------

    def keys_status(self) -> KeysStatus:
        """Key ids, which is primary, and how many data keys and rows each protects."""
        from store.protection import keys_status

        return keys_status(self.engine, self.cipher)

    def rotate_keys(self) -> str:
        """A new primary key-encryption key; every data key rewrapped with it (fast)."""
        from store.protection import rotate_keys

        return rotate_keys(self.engine, self.cipher)

    def reencrypt(self, progress: Callable[[int, int], None] | None = None) -> int:
        """New data keys for every incident and its rows resealed; resumable; how many."""
        from store.protection import reencrypt_rows

        return reencrypt_rows(self.engine, self.cipher, progress)

    def check_keys(self, progress: Callable[[int, int], None] | None = None) -> CheckReport:
        """Open every sealed value and unwrap every data key; the problems found."""
        from store.protection import check_keys

        return check_keys(self.engine, self.cipher, progress)

    def retire_key(self, key_id: str) -> str:
        """Move a key-encryption key that wraps nothing out of the keyring; where to."""
        from store.protection import retire_key

        return retire_key(self.cipher, key_id)

    def encrypt_store(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Seal every clear-text row in place (resumable); how many incidents. The journal
        is append-only: its lines written in clear stay as they are (see clear_journal_records)."""
        from store.protection import encrypt_store

        return encrypt_store(self.engine, self.cipher, progress)

    def clear_journal_records(self) -> int:
        """How many journal records hold their body in clear (written before the store
        sealed); they leave with the journal days that hold them (backup retention)."""
        from store.backup.journal import incident_lines, journal_directory

        return sum(found.clear for found in
                   incident_lines(journal_directory(self.backups), None).values())

    def purge_candidates(self, now: datetime | None = None) -> list[PurgeCandidate]:
        """The incidents the retention policy would remove now."""
        from store.protection import retention_candidates

        return retention_candidates(self.engine, self.settings.retention_days,
                                    self.settings.retention_days_by_severity, now)

    def forget(self, incident_ids: list[str], reason: str = "forget") -> PurgeReport:
        """Erase these incidents and everything derived from them, data keys included."""
        from store.locations import index_directory
        from store.protection import forget_incidents
        from store.vectors.index import SNAPSHOT_FILE

        if (index_directory(self.settings) / SNAPSHOT_FILE).exists():
            self.vectors.index()  # loaded while the rows still match the snapshot
        return forget_incidents(self.engine, self.cipher, self.backups, incident_ids,
                                reason=reason, remove_vectors=self._remove_vectors,
                                clear_caches=self._clear_text_caches)

    def _remove_vectors(self, analysis_pks: list[int]) -> None:
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

        return verify(self.vectors, sample=sample)

    def reindex(self, pending_only: bool = False,
                progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed analyses with the configured embedder and rebuild the index; how many."""
        from store.vectors.maintenance import reindex

        return reindex(self.vectors, pending_only=pending_only, progress=progress)

    def pending_vector_count(self) -> int:
        """How many analyses wait for a vector (an embedder outage left them pending)."""
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
        with read_connection(self.engine) as connection:
            counts = queries.totals(connection)
        url = self.engine.url.render_as_string(hide_password=False)
        return StoreSummary(database_url=redact_url(url), **counts)


def _journal_sealer(cipher: StoreCipher) -> BodySealer:
    """Seals journal bodies with their incidents' data keys (when the store seals)."""
    from store.crypto import JournalSealer

    return JournalSealer(cipher)


def _open_cipher(settings: Settings, engine: Engine) -> StoreCipher:
    """The store's cipher, attached to its engine so that queries and writes find it."""
    from store.crypto import attach_cipher, cipher_from_settings
    from store.db.identity import store_identity

    with read_connection(engine) as connection:
        store_id = store_identity(connection).store_id
    cipher = cipher_from_settings(settings, store_id)
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
