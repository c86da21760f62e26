"""Vectors of analyses: embedding on save, the in-memory index and catching up with the database."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select
from sqlmodel import col

from store.db.engine import read_connection, write_transaction
from store.db.identity import StoreIdentity, set_pii_key, store_identity
from store.db.migrate import stored_revision
from store.db.models import Embedding
from store.db.writes import vector_problem
from store.errors import EmbedderMismatch, PiiKeyMismatch, StoreError
from store.ingest.pricing import price_call
from store.ingest.records import PreparedSave
from store.locations import index_directory
from store.settings import Settings
from store.vectors.embedder import (
    COMBINED_EMBEDDER,
    DEFAULT_EMBEDDER,
    MODEL_EMBEDDER,
    EmbedCall,
    Embedder,
)
from store.vectors.index import (
    AUTO_APPROXIMATE_KIND,
    GRAPH_KINDS,
    HNSW_SEARCH_BREADTHS,
    VectorIndex,
)
from store.vectors.text import embedding_text

if TYPE_CHECKING:
    from store.cache import Cache
    from store.privacy.scrubber import PiiScrubber
    from store.schemas import AnalysisIn
    from store.vectors.helper import EmbedHelper, HelpedBatch

log = logging.getLogger("incidex.vectors")
CATCH_UP_CHUNK = 20_000
SNAPSHOT_MIN_CHANGES = 1000
SPOT_CHECKS = 8  # random vectors of a loaded snapshot compared with the database's
EMBED_NAMESPACE = "embed"
MIN_RECALL = 0.95  # recall@10 against exact below which `auto` keeps the exact index


class VectorService:
    """Owns the embedder, the PII scrubber and (once asked for) the process's vector index."""

    def __init__(self, settings: Settings, engine: Engine,
                 cache_provider: Callable[[], Cache] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        # Asked for only when a remote embedder needs it: offline saves never open the cache.
        self._cache_provider = cache_provider
        self._embedder: Embedder | None = None
        self._scrubber: PiiScrubber | None = None
        self._index: VectorIndex | None = None
        self._index_lock = threading.Lock()
        self._outage_reported = False
        self._dimension: int | None = None
        self._reindexing = False
        self._helper: EmbedHelper | None = None
        # The batch start_vectors() began: its records and their vectors in the making.
        self._early: tuple[list[AnalysisIn], HelpedBatch] | None = None
        self._early_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The configured embedder, built on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def scrubber(self) -> PiiScrubber:
        """The PII scrubber, keyed from outside the data directory; PiiKeyMismatch when its
        key is not the one this store's vectors were made with."""
        if self._scrubber is None:
            from store.privacy.scrubber import scrubber_from_settings

            scrubber = scrubber_from_settings(self.settings)
            self._check_pii_key(scrubber.fingerprint)
            self._scrubber = scrubber
        return self._scrubber

    def _check_pii_key(self, fingerprint: str) -> None:
        """Record the key's fingerprint on first use; refuse another key afterwards."""
        with read_connection(self.engine) as connection:
            identity = store_identity(connection)
        if identity.pii_key_fingerprint is None and identity.pii_key_reindexing is None:
            with write_transaction(self.engine) as connection:
                set_pii_key(connection, fingerprint, only_if_unset=True)
            with read_connection(self.engine) as connection:
                identity = store_identity(connection)
        if identity.pii_key_reindexing is not None:
            raise PiiKeyMismatch(
                "a reindex to a new PII pseudonym key did not finish, so the stored vectors mix "
                "two keys: run `incidex reindex` (with the key you mean to keep) to finish it")
        if not hmac.compare_digest(identity.pii_key_fingerprint or "", fingerprint):
            raise PiiKeyMismatch(
                f"the PII pseudonym key (fingerprint {fingerprint[:12]}) is not the one this "
                f"store's vectors were made with (fingerprint "
                f"{(identity.pii_key_fingerprint or '')[:12]}): restore that key (INCIDEX_PII_KEY "
                "or the pii.key file in INCIDEX_SECRETS_DIR), or run `incidex reindex` to "
                "re-embed every analysis with this one")

    def begin_reindex(self) -> None:
        """Before a full reindex: take the configured PII key even if it is new (marking the
        store mid-change until finish_reindex), and any dimension the embedder now returns."""
        from store.privacy.scrubber import scrubber_from_settings

        scrubber = scrubber_from_settings(self.settings)
        with write_transaction(self.engine) as connection:
            current = store_identity(connection)
            if current.pii_key_fingerprint != scrubber.fingerprint:
                set_pii_key(connection, current.pii_key_fingerprint, scrubber.fingerprint)
        self._scrubber = scrubber
        self._reindexing = True

    def finish_reindex(self) -> None:
        """Every vector is now made with the configured key: record it as the store's."""
        with write_transaction(self.engine) as connection:
            set_pii_key(connection, self.scrubber.fingerprint, None)
        self._reindexing = False
        self._dimension = None

    def clean_text(self, title: str, description: str, findings: str,
                   analysis: dict[str, Any]) -> str:
        """The PII-free text embedded for an analysis."""
        return self.scrubber.scrub(embedding_text(title, description, findings, analysis))

    # Saving -------------------------------------------------------------------------------

    def attach_vectors(self, prepared: Sequence[PreparedSave]) -> list[dict[str, Any]]:
        """Embed each record's clean text onto it; returns run rows of the embedding calls.

        A slow embedder (the local model) never embeds on save: its records are saved with
        the vector pending, for a background filler (store/vectors/filler.py) to fill. When
        the embedder is unreachable (or returns unusable vectors), or the PII key is not the
        store's, the records keep no vector and are saved as pending too, to be filled once
        that is mended.
        """
        from store.vectors.embedder import EmbedderUnavailable

        if not prepared:
            return []
        embedder = self.embedder
        if not self.settings.embed_on_save or fills_in_background(embedder):
            for item in prepared:
                item.embedder, item.dimension, item.vector = embedder.name, 0, None
            return []
        try:
            vectors, calls = self._clean_and_embed(prepared)
            self._outage_reported = False
        except (EmbedderUnavailable, PiiKeyMismatch) as error:
            if not self._outage_reported:
                what = "PII key refused" if isinstance(error, PiiKeyMismatch) else (
                    "embedder unavailable")
                log.warning("%s, vectors left pending: %s", what, error)
                self._outage_reported = True
            vectors, calls = None, []
        dimension = vectors.shape[1] if vectors is not None else _known_dimension(embedder)
        for row, item in enumerate(prepared):
            item.embedder = embedder.name
            item.dimension = dimension
            item.vector = None if vectors is None else vectors[row].tobytes()
        return [embedding_run_row(call) for call in calls]

    def _clean_and_embed(self, prepared: Sequence[PreparedSave]
                         ) -> tuple[np.ndarray, list[EmbedCall]]:
        """The vectors of the records' clean texts; the offline default embedder's with the
        help of a second process for a large batch (the same vectors, made faster)."""
        records = [p.record for p in prepared]
        scrubber, embedder = self.scrubber, self.embedder
        if not _helped(embedder):
            return self.embed_texts([scrubber.scrub(_text_of(record)) for record in records])
        early = self._take_early()
        if early is not None:
            started, batch = early
            rows = {id(record): row for row, record in enumerate(started)}
            if batch.helper.serves(scrubber, embedder) and all(id(record) in rows
                                                               for record in records):
                vectors = batch.finish()[[rows[id(record)] for record in records]]
                self._check_vectors(vectors)
                return vectors, []
            batch.cancel()
        vectors = self._embed_helper(scrubber, embedder).clean_and_embed(
            [_text_of(record) for record in records])
        self._check_vectors(vectors)
        return vectors, []

    def start_vectors(self, records: Sequence[AnalysisIn]) -> None:
        """Begin making the vectors of a batch that will be saved next, in the helper process
        (offline default embedder, large batches), while this process saves the batch before;
        the next attach_vectors() for these records takes them."""
        self._cancel(self._take_early())
        if not self.settings.embed_on_save or self.settings.embedder != DEFAULT_EMBEDDER:
            return
        from store.vectors.helper import MIN_HELPED_TEXTS

        if len(records) < MIN_HELPED_TEXTS:
            return
        try:
            scrubber, embedder = self.scrubber, self.embedder
        except (PiiKeyMismatch, StoreError):
            return  # attach_vectors reports it
        if not _helped(embedder):
            return
        batch = self._embed_helper(scrubber, embedder).start([_text_of(r) for r in records])
        with self._early_lock:
            early, self._early = self._early, (list(records), batch)
        self._cancel(early)

    def _take_early(self) -> tuple[list[AnalysisIn], HelpedBatch] | None:
        """The batch start_vectors() began, now no longer waiting for its save."""
        with self._early_lock:
            early, self._early = self._early, None
        return early

    @staticmethod
    def _cancel(early: tuple[list[AnalysisIn], HelpedBatch] | None) -> None:
        if early is not None:
            early[1].cancel()

    def _embed_helper(self, scrubber: PiiScrubber, embedder: Embedder) -> EmbedHelper:
        """The helper for this scrubber and embedder (a new one after a reindex changed the
        PII key)."""
        if self._helper is not None and not self._helper.serves(scrubber, embedder):
            self._helper.close()
            self._helper = None
        if self._helper is None:
            from store.vectors.helper import EmbedHelper

            self._helper = EmbedHelper(scrubber, embedder)  # type: ignore[arg-type]
        return self._helper

    def close(self) -> None:
        """Stop the embedding helper process, if a large batch started one."""
        self._cancel(self._take_early())
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def embed_texts(self, texts: list[str]) -> tuple[np.ndarray, list[EmbedCall]]:
        """Embed texts; a remote embedder's vectors are cached per text and embedder."""
        embedder = self.embedder
        if self._cache_provider is None or not getattr(embedder, "remote", embedder.name.startswith(
                "openai:")):
            result = embedder.embed(texts)
            self._check_vectors(result.vectors)
            return result.vectors, result.calls
        return self._embed_through_cache(texts)

    def expected_dimension(self) -> int | None:
        """The dimension of this embedder's stored vectors, None while it has none (or while a
        full reindex replaces them)."""
        if self._reindexing:
            return None
        if self._dimension is None:
            with read_connection(self.engine) as connection:
                self._dimension = connection.execute(
                    select(col(Embedding.dimension))
                    .where(col(Embedding.embedder) == self.embedder.name,
                           col(Embedding.status) == "ready").limit(1)
                ).scalar()
        return self._dimension

    def _check_vectors(self, vectors: np.ndarray) -> None:
        """Refuse what an embedder returned unless it is finite rows of the store's dimension."""
        from store.vectors.embedder import EmbedderUnavailable

        expected = self.expected_dimension()
        name = self.embedder.name
        if vectors.ndim != 2 or (expected is not None and vectors.shape[1] != expected):
            raise EmbedderUnavailable(
                f"{name} returned vectors of dimension {vectors.shape[-1]}, but this store's "
                f"vectors from it have {expected}: was the model behind it changed?")
        if not np.isfinite(vectors).all():
            raise EmbedderUnavailable(f"{name} returned vectors with NaN or infinite values")

    def _embed_through_cache(self, texts: list[str]) -> tuple[np.ndarray, list[EmbedCall]]:
        from store.cache.stats import Savings

        assert self._cache_provider is not None
        cache = self._cache_provider()
        embedder = self.embedder
        keys = [hashlib.sha256(f"{embedder.name}\x00{text}".encode()).hexdigest()
                for text in texts]
        found: dict[int, np.ndarray] = {}
        expected = self.expected_dimension()
        for position, key in enumerate(keys):
            cached = cache.get(EMBED_NAMESPACE, key)
            if cached is not None and vector_problem(cached, expected or len(cached) // 4) is None:
                found[position] = np.frombuffer(cached, dtype=np.float32)
        missing = [position for position in range(len(texts)) if position not in found]
        calls: list[EmbedCall] = []
        if missing:
            result = self.embedder.embed([texts[position] for position in missing])
            self._check_vectors(result.vectors)  # before anything reaches the cache
            calls = result.calls
            tokens = sum(call.input_tokens for call in calls)
            share = tokens // max(len(missing), 1)
            for row, position in enumerate(missing):
                vector = np.ascontiguousarray(result.vectors[row], dtype=np.float32)
                found[position] = vector
                cache.set(EMBED_NAMESPACE, keys[position], vector.tobytes(),
                               savings=Savings(tokens=share, cost_usd=_embed_cost(calls, share)))
        matrix = np.vstack([found[position] for position in range(len(texts))])
        return matrix.astype(np.float32, copy=False), calls

    # The index ----------------------------------------------------------------------------

    def index(self) -> VectorIndex:
        """This process's index: the snapshot if it is sound for this store, and caught up."""
        with self._index_lock:
            if self._index is None:
                self.check_embedder()
                index, _reason = self.load_index()
                self._fit_kind(index)
                self._index = index
                if index.replaces_snapshot:
                    self._replace_snapshot(index)
            index = self._index
        self.catch_up(index)
        return index

    def _replace_snapshot(self, index: VectorIndex) -> None:
        """Write a rebuilt index over a snapshot that was set aside, so no one trusts it again."""
        try:
            index.save_snapshot(index_directory(self.settings))
            index.replaces_snapshot = False
        except OSError as error:
            log.warning("index snapshot not rewritten: %s", error.strerror)

    def load_index(self) -> tuple[VectorIndex, str | None]:
        """The snapshot checked against this store and caught up, or an index rebuilt from the
        database; with why the snapshot was set aside (None when it was used or absent)."""
        embedder = self.embedder
        loaded, reason = VectorIndex.open_snapshot(index_directory(self.settings),
                                                   embedder.name, embedder.dimension)
        if loaded is not None:
            reason = self.snapshot_problem(loaded)
            if reason is None:
                return loaded, None
        if reason is None:
            return self.rebuild_index(), None
        log.warning("vector index snapshot set aside: %s; rebuilding it from the database",
                    reason)
        rebuilt = self.rebuild_index()
        rebuilt.replaces_snapshot = True  # written at the next snapshot(), however small
        return rebuilt, reason

    def snapshot_problem(self, index: VectorIndex) -> str | None:
        """Why a loaded snapshot cannot serve this store, or None; catches it up if it can."""
        with read_connection(self.engine) as connection:
            identity = store_identity(connection)
            revision = stored_revision(connection) or ""
        reason = _foreign(index, identity, revision)
        if reason is None:
            self.catch_up(index)
            reason = self._count_mismatch(index) or self._spot_check(index)
        return reason

    def rebuild_index(self, store_id: str | None = None, revision: str | None = None
                      ) -> VectorIndex:
        """A fresh index of every usable vector in the database."""
        if store_id is None or revision is None:
            with read_connection(self.engine) as connection:
                store_id = store_identity(connection).store_id
                revision = stored_revision(connection) or ""
        embedder = self.embedder
        fresh = VectorIndex(embedder.name, embedder.dimension, store_id=store_id,
                            revision=revision)
        self.catch_up(fresh)
        return fresh

    def _spot_check(self, index: VectorIndex) -> str | None:
        """Why a few random vectors of the index differ from the database's, or None.

        Catches a snapshot whose ids were shuffled or whose vectors were replaced and whose
        checksum was rewritten to match: a handful of row reads at open.
        """
        held = index.ids()
        if len(held) == 0:
            return None
        picks = np.random.default_rng().choice(held, size=min(SPOT_CHECKS, len(held)),
                                               replace=False)
        with read_connection(self.engine) as connection:
            stored = dict(connection.execute(
                select(col(Embedding.analysis_pk), col(Embedding.vector))
                .where(col(Embedding.analysis_pk).in_(picks.tolist()),
                       col(Embedding.status) == "ready",
                       col(Embedding.embedder) == index.embedder)).all())
        for pk in picks.tolist():
            blob = stored.get(pk)
            if blob is None:
                return f"it holds analysis {pk}, which has no vector in the database"
            held_vector = index.vector(pk)
            if held_vector is None or not same_vector(held_vector, blob, index.kind):
                return f"its vector of analysis {pk} is not the database's"
        return None

    def _count_mismatch(self, index: VectorIndex) -> str | None:
        """Why a caught-up index cannot be this store's (another count of vectors), or None.

        Both counts are read from one snapshot of the database, and only once the index has
        caught up with the last sequence number in it; two index seeks, no row reads.
        """
        for _attempt in range(3):
            options = ({"isolation_level": "REPEATABLE READ"}
                       if self.engine.dialect.name == "postgresql" else {})
            with self.engine.connect().execution_options(**options) as connection, \
                    connection.begin():
                issued = store_identity(connection).embedding_seq
                if issued == index.high_water_mark:
                    ready = _ready_count(connection, index.embedder)
                    held = len(index) + len(index.skipped)
                    if ready == held:
                        return None
                    return (f"it holds {held:,} vectors up to write {issued:,}, the database "
                            f"{ready:,}")
            self.catch_up(index)
        return None  # writers keep moving the mark; the ids are still checked by verify

    def wanted_kind(self, count: int) -> str:
        """The index kind the settings ask for at this many vectors."""
        kind = self.settings.index_kind
        if kind != "auto":
            return kind
        # On prose-like vectors (bench/prose_scale.py) inverted files lose a quarter of the
        # true top ten at nprobe 32; a graph keeps recall@10 above 0.95 at about a
        # millisecond. Whether it does on this store is measured when it is built.
        return (AUTO_APPROXIMATE_KIND if count >= self.settings.index_approximate_from
                else "flat")

    def _fit_kind(self, index: VectorIndex) -> None:
        """Switch exact and approximate as the settings and the size ask, once, at load.

        `auto` only ever serves an approximate index whose recall@10 against exact search,
        measured on this store's own vectors as it was built, reaches MIN_RECALL; below
        that it stays exact, and tries again once the store has doubled.
        """
        wanted = self.wanted_kind(len(index))
        auto = self.settings.index_kind == "auto"
        if wanted != index.kind and not (auto and _refused_lately(index, wanted)):
            log.info("rebuilding the vector index as %s (%d vectors)", wanted, len(index))
            check = index.convert(wanted, self._first_breadth(wanted), MIN_RECALL,
                                  exact_if_short=auto)
            if check is not None and check.recall < MIN_RECALL:
                log.warning("approximate vector index %s: %s", "refused, staying exact"
                            if auto else "below the recall wanted", check.describe())
        index.set_nprobe(self.settings.index_nprobe)

    def _first_breadth(self, kind: str) -> int:
        """The narrowest search a recall check starts from."""
        return HNSW_SEARCH_BREADTHS[0] if kind in GRAPH_KINDS else self.settings.index_nprobe

    @property
    def index_loaded(self) -> bool:
        """Whether this process holds an index in memory."""
        return self._index is not None

    def check_embedder(self) -> None:
        """Refuse to mix vectors: the stored ones must come from the configured embedder."""
        embedder = self.embedder
        with read_connection(self.engine) as connection:
            # Two range seeks on the embedder index instead of a scan of every vector row.
            below, above = (
                connection.execute(
                    select(col(Embedding.embedder), col(Embedding.dimension))
                    .where(condition).limit(1)
                ).first()
                for condition in (col(Embedding.embedder) < embedder.name,
                                  col(Embedding.embedder) > embedder.name)
            )
            others = below or above
        if others is None:
            with read_connection(self.engine) as connection:
                others = connection.execute(
                    select(col(Embedding.embedder), col(Embedding.dimension))
                    .where(col(Embedding.embedder) == embedder.name,
                           col(Embedding.dimension) != embedder.dimension,
                           col(Embedding.status) == "ready").limit(1)
                ).first()
        if others is not None:
            raise EmbedderMismatch(
                f"the store's vectors were made by {others[0]!r} (dimension {others[1]}), but "
                f"the embedder setting is {embedder.name!r}: run `incidex reindex` to rebuild "
                "them, or set INCIDEX_EMBEDDER back")

    def catch_up(self, index: VectorIndex) -> int:
        """Add every usable vector written since the index's high-water mark; returns how many.

        The last sequence number handed out is read first: every row up to it is committed
        (numbers are taken under a lock held until commit), so the mark can move to it
        without skipping a row that commits later. The query walks the seq index alone;
        pending rows and other embedders' are skipped, and unusable vectors (NULL, NaN,
        wrong length) are left out with a warning.
        """
        added = 0
        while True:
            with read_connection(self.engine) as connection:
                issued = store_identity(connection).embedding_seq
                rows = connection.execute(
                    select(col(Embedding.analysis_pk), col(Embedding.vector), col(Embedding.seq),
                           col(Embedding.status), col(Embedding.embedder),
                           col(Embedding.dimension))
                    .where(col(Embedding.seq) > index.high_water_mark,
                           col(Embedding.seq) <= issued)
                    .order_by(col(Embedding.seq))
                    .limit(CATCH_UP_CHUNK)
                ).all()
            complete = len(rows) < CATCH_UP_CHUNK
            mark = issued if complete else int(rows[-1].seq)
            usable, unusable = _usable_rows(rows, index)
            if unusable:
                log.warning("%d unusable vectors left out of the index (analysis ids %s); "
                            "`incidex verify` lists them, `incidex reindex` rebuilds them",
                            len(unusable), ", ".join(map(str, unusable[:10])))
                index.remove(np.array(unusable, dtype=np.int64))
            ids = np.fromiter((row[0] for row in usable), dtype=np.int64, count=len(usable))
            matrix = np.frombuffer(b"".join(row.vector for row in usable), dtype=np.float32)
            index.add(ids, matrix.reshape(len(usable), index.dimension), high_water_mark=mark)
            index.skipped.difference_update(ids.tolist())
            index.skipped.update(unusable)
            added += len(usable)
            if complete:
                return added

    def catch_up_loaded(self) -> int:
        """Catch the loaded index (if any) up with the database; how many vectors it took."""
        index = self._index
        return 0 if index is None else self.catch_up(index)

    def added(self, saved: Sequence[tuple[int, PreparedSave]]) -> None:
        """Put freshly saved vectors into the loaded index at once (no-op without one)."""
        index = self._index
        if index is None:
            return
        ready = [(pk, item) for pk, item in saved
                 if item.vector is not None and item.embedder == index.embedder]
        if ready:
            ids = np.array([pk for pk, _ in ready], dtype=np.int64)
            matrix = np.frombuffer(b"".join(item.vector or b"" for _, item in ready),
                                   dtype=np.float32).reshape(len(ready), index.dimension)
            index.add(ids, matrix)

    def snapshot(self, force: bool = False) -> bool:
        """Write the index snapshot when enough changed since the last one; True if written.

        Opening adds the vectors saved after the snapshot from the database, so a snapshot
        is only worth its full rewrite once that catch-up would cost more than a moment.
        """
        index = self._index
        if index is None or (index.unsaved == 0 and not index.replaces_snapshot):
            return False
        if not (force or index.replaces_snapshot) and index.unsaved < max(
                SNAPSHOT_MIN_CHANGES, len(index) // 100):
            return False
        index.save_snapshot(index_directory(self.settings))
        index.replaces_snapshot = False
        return True

    def forget_index(self) -> None:
        """Drop the in-memory index (after a reindex replaced it on disk)."""
        with self._index_lock:
            self._index = None
            self._dimension = None


def _usable_rows(rows: Sequence[Any], index: VectorIndex) -> tuple[list[Any], list[int]]:
    """The ready rows of the index's embedder whose vectors can be searched, and the analysis
    ids of those whose vectors cannot (NULL, empty, NaN, another length)."""
    ready = [row for row in rows if row.status == "ready" and row.embedder == index.embedder]
    usable = [row for row in ready if row.dimension == index.dimension
              and vector_problem(row.vector, row.dimension) is None]
    unusable = {int(row.analysis_pk) for row in ready} - {int(row.analysis_pk) for row in usable}
    return usable, sorted(unusable)


def _foreign(index: VectorIndex, identity: StoreIdentity, revision: str) -> str | None:
    """Why a snapshot cannot describe this store, or None."""
    if not hmac.compare_digest(index.store_id, identity.store_id):
        return (f"it was made from another store ({index.store_id[:8] or 'unknown'}, "
                f"this one is {identity.store_id[:8]})")
    if index.revision != revision:
        return f"it was made at schema revision {index.revision}, the store is at {revision}"
    if index.high_water_mark > identity.embedding_seq:
        return (f"its high-water mark {index.high_water_mark:,} is past the store's last "
                f"write {identity.embedding_seq:,}")
    return None


def _refused_lately(index: VectorIndex, wanted: str) -> bool:
    """Whether `auto` measured this kind too inexact on this store, at over half its size."""
    check = index.recall_check
    return (index.kind == "flat" and check is not None and check.kind == wanted
            and check.recall < MIN_RECALL and len(index) < 2 * check.count)


def same_vector(held: np.ndarray, blob: bytes, kind: str) -> bool:
    """Whether an index vector is the stored one ("ivf-sq8" keeps only 8-bit codes)."""
    stored = np.frombuffer(blob, dtype=np.float32)
    if stored.shape != held.shape:
        return False
    if kind in ("flat", "ivf", "hnsw", "hnsw-sq8"):  # "hnsw-sq8" keeps the floats it re-ranks by
        return bool(np.allclose(held, stored, atol=1e-6))
    norms = float(np.linalg.norm(held) * np.linalg.norm(stored))
    return norms == 0.0 or float(held @ stored) / norms >= 0.98


def _ready_count(connection: Connection, embedder: str) -> int:
    """Ready vectors of one embedder, from the embedder and status indexes alone."""
    rows = connection.execute(select(func.count()).select_from(Embedding)
                              .where(col(Embedding.embedder) == embedder)).scalar_one()
    pending = connection.execute(select(func.count()).select_from(Embedding)
                                 .where(col(Embedding.status) == "pending",
                                        col(Embedding.embedder) == embedder)).scalar_one()
    return int(rows) - int(pending)


def _known_dimension(embedder: Embedder) -> int:
    """The embedder's dimension, or 0 when learning it would need the unreachable server."""
    from store.vectors.embedder import EmbedderUnavailable

    try:
        return embedder.dimension
    except EmbedderUnavailable:
        return 0


def embedding_run_row(call: EmbedCall) -> dict[str, Any]:
    """The run_metadata row of one embedding request."""
    price = price_call(call.model_name, call.input_tokens, 0, call.start_time, "embedding")
    return {
        "request_id": call.request_id,
        "kind": "embedding",
        "model_name": call.model_name,
        "incident_id": None,
        "analysis_id": None,
        "input_tokens": call.input_tokens,
        "output_tokens": 0,
        "total_tokens": call.input_tokens,
        "start_time": call.start_time,
        "end_time": call.end_time,
        "duration_seconds": (call.end_time - call.start_time).total_seconds(),
        "cost_usd": price.cost_usd,
        "price_source": price.source,
    }


def _embed_cost(calls: list[EmbedCall], tokens: int) -> Any:
    from decimal import Decimal

    if not calls:
        return Decimal(0)
    price = price_call(calls[0].model_name, tokens, 0, calls[0].start_time, "embedding")
    return price.cost_usd or Decimal(0)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder settings.embedder names: the offline default, the local model of the
    models extra, or 'openai:<model>'."""
    name = settings.embedder
    if name == DEFAULT_EMBEDDER:
        from store.vectors.offline import HashedConceptEmbedder

        return HashedConceptEmbedder()
    if name == MODEL_EMBEDDER:
        from store.vectors.local_model import SentenceModelEmbedder

        return SentenceModelEmbedder()
    if name == COMBINED_EMBEDDER:
        from store.vectors.local_model import CombinedEmbedder

        return CombinedEmbedder()
    if name.startswith("openai:") and name.removeprefix("openai:").strip():
        from store.vectors.remote import OpenAIEmbedder

        return OpenAIEmbedder(
            model=name.removeprefix("openai:").strip(),
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_seconds=settings.openai_timeout_seconds,
        )
    raise StoreError(f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER!r}, {MODEL_EMBEDDER!r}, "
                     f"{COMBINED_EMBEDDER!r} or 'openai:<model>'")


def fills_in_background(embedder: Embedder) -> bool:
    """Whether saves leave this embedder's vectors pending for a background filler (an
    embedder too slow to wait for: the local model embeds a few texts a second under load)."""
    return bool(getattr(embedder, "fills_in_background", False))


def _helped(embedder: Embedder) -> bool:
    """Whether a helper process can make this embedder's vectors (the offline default)."""
    return embedder.name == DEFAULT_EMBEDDER and not getattr(embedder, "remote", True)


def _text_of(record: AnalysisIn) -> str:
    """The text embedded for a record, before PII is stripped."""
    incident = record.incident
    return embedding_text(incident.title, incident.description, incident.initial_findings,
                          record.analysis)
