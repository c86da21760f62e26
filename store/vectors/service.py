"""Vectors of analyses: embedding on save, the in-memory index and catching up with the database."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, select
from sqlmodel import col

from store.db.engine import read_connection
from store.db.models import Embedding
from store.errors import EmbedderMismatch, StoreError
from store.ingest.pricing import price_call
from store.ingest.records import PreparedSave
from store.locations import index_directory
from store.settings import Settings
from store.vectors.embedder import DEFAULT_EMBEDDER, EmbedCall, Embedder
from store.vectors.index import VectorIndex
from store.vectors.text import embedding_text

if TYPE_CHECKING:
    from store.cache import Cache
    from store.privacy.scrubber import PiiScrubber

log = logging.getLogger("incidex.vectors")
CATCH_UP_CHUNK = 20_000
SNAPSHOT_MIN_CHANGES = 1000
EMBED_NAMESPACE = "embed"


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

    @property
    def embedder(self) -> Embedder:
        """The configured embedder, built on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def scrubber(self) -> PiiScrubber:
        """The PII scrubber, keyed from outside the data directory."""
        if self._scrubber is None:
            from store.privacy.scrubber import scrubber_from_settings

            self._scrubber = scrubber_from_settings(self.settings)
        return self._scrubber

    def clean_text(self, title: str, description: str, findings: str,
                   analysis: dict[str, Any]) -> str:
        """The PII-free text embedded for an analysis."""
        return self.scrubber.scrub(embedding_text(title, description, findings, analysis))

    # Saving -------------------------------------------------------------------------------

    def attach_vectors(self, prepared: Sequence[PreparedSave]) -> list[dict[str, Any]]:
        """Embed each record's clean text onto it; returns run rows of the embedding calls.

        When the embedder is unreachable the records keep no vector and are saved as
        pending, to be filled by `incidex reindex --pending`.
        """
        from store.vectors.embedder import EmbedderUnavailable

        if not prepared:
            return []
        embedder = self.embedder
        if not self.settings.embed_on_save:
            for item in prepared:
                item.embedder, item.dimension, item.vector = embedder.name, 0, None
            return []
        texts = [self.clean_text(p.record.incident.title, p.record.incident.description,
                                 p.record.incident.initial_findings, p.record.analysis)
                 for p in prepared]
        try:
            vectors, calls = self.embed_texts(texts)
            self._outage_reported = False
        except EmbedderUnavailable as error:
            if not self._outage_reported:
                log.warning("embedder unavailable, vectors left pending: %s", error)
                self._outage_reported = True
            vectors, calls = None, []
        dimension = vectors.shape[1] if vectors is not None else _known_dimension(embedder)
        for row, item in enumerate(prepared):
            item.embedder = embedder.name
            item.dimension = dimension
            item.vector = None if vectors is None else vectors[row].tobytes()
        return [embedding_run_row(call) for call in calls]

    def embed_texts(self, texts: list[str]) -> tuple[np.ndarray, list[EmbedCall]]:
        """Embed texts; a remote embedder's vectors are cached per text and embedder."""
        embedder = self.embedder
        if self._cache_provider is None or not getattr(embedder, "remote", embedder.name.startswith(
                "openai:")):
            result = embedder.embed(texts)
            return result.vectors, result.calls
        return self._embed_through_cache(texts)

    def _embed_through_cache(self, texts: list[str]) -> tuple[np.ndarray, list[EmbedCall]]:
        from store.cache.stats import Savings

        assert self._cache_provider is not None
        cache = self._cache_provider()
        embedder = self.embedder
        keys = [hashlib.sha256(f"{embedder.name}\x00{text}".encode()).hexdigest()
                for text in texts]
        found: dict[int, np.ndarray] = {}
        for position, key in enumerate(keys):
            cached = cache.get(EMBED_NAMESPACE, key)
            if cached is not None:
                found[position] = np.frombuffer(cached, dtype=np.float32)
        missing = [position for position in range(len(texts)) if position not in found]
        calls: list[EmbedCall] = []
        if missing:
            result = self.embedder.embed([texts[position] for position in missing])
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
        """This process's index: loaded from the snapshot, checked, and caught up."""
        with self._index_lock:
            if self._index is None:
                self.check_embedder()
                embedder = self.embedder
                directory = index_directory(self.settings)
                loaded = VectorIndex.load_snapshot(directory, embedder.name, embedder.dimension)
                self._index = loaded or VectorIndex(embedder.name, embedder.dimension)
                self.catch_up(self._index)
                self._fit_kind(self._index)
            index = self._index
        self.catch_up(index)
        return index

    def wanted_kind(self, count: int) -> str:
        """The index kind the settings ask for at this many vectors."""
        kind = self.settings.index_kind
        if kind != "auto":
            return kind
        # Measured at 1M (bench/similar_scale.py): 8-bit codes keep recall@10 at 0.96 with a
        # quarter of the memory and a snapshot that loads in well under a second.
        return "ivf-sq8" if count >= self.settings.index_approximate_from else "flat"

    def _fit_kind(self, index: VectorIndex) -> None:
        """Switch exact and approximate as the settings and the size ask, once, at load."""
        wanted = self.wanted_kind(len(index))
        if wanted != index.kind:
            log.info("rebuilding the vector index as %s (%d vectors)", wanted, len(index))
            index.convert(wanted, self.settings.index_nprobe)
        index.set_nprobe(self.settings.index_nprobe)

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
        if others is not None:
            raise EmbedderMismatch(
                f"the store's vectors were made by {others[0]!r} (dimension {others[1]}), but "
                f"the embedder setting is {embedder.name!r}: run `incidex reindex` to rebuild "
                "them, or set INCIDEX_EMBEDDER back")

    def catch_up(self, index: VectorIndex) -> int:
        """Add every ready vector written since the index's high-water mark; returns how many.

        The query walks the seq index alone (the planner would otherwise scan every vector
        row by status or embedder); pending rows and other embedders' are skipped here.
        """
        added = 0
        while True:
            with read_connection(self.engine) as connection:
                rows = connection.execute(
                    select(col(Embedding.analysis_pk), col(Embedding.vector), col(Embedding.seq),
                           col(Embedding.status), col(Embedding.embedder))
                    .where(col(Embedding.seq) > index.high_water_mark)
                    .order_by(col(Embedding.seq))
                    .limit(CATCH_UP_CHUNK)
                ).all()
            if not rows:
                return added
            ready = [row for row in rows
                     if row.status == "ready" and row.embedder == index.embedder and row.vector]
            ids = np.fromiter((row[0] for row in ready), dtype=np.int64, count=len(ready))
            matrix = np.frombuffer(b"".join(row.vector for row in ready), dtype=np.float32)
            index.add(ids, matrix.reshape(len(ready), index.dimension),
                      high_water_mark=int(rows[-1].seq))
            added += len(ready)

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
        if index is None or index.unsaved == 0:
            return False
        if not force and index.unsaved < max(SNAPSHOT_MIN_CHANGES, len(index) // 100):
            return False
        index.save_snapshot(index_directory(self.settings))
        return True

    def forget_index(self) -> None:
        """Drop the in-memory index (after a reindex replaced it on disk)."""
        with self._index_lock:
            self._index = None


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
    """The embedder settings.embedder names: the offline default or 'openai:<model>'."""
    name = settings.embedder
    if name == DEFAULT_EMBEDDER:
        from store.vectors.offline import HashedConceptEmbedder

        return HashedConceptEmbedder()
    if name.startswith("openai:") and name.removeprefix("openai:").strip():
        from store.vectors.remote import OpenAIEmbedder

        return OpenAIEmbedder(
            model=name.removeprefix("openai:").strip(),
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_seconds=settings.openai_timeout_seconds,
        )
    raise StoreError(f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER!r} or 'openai:<model>'")
