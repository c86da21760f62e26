"""Keeping vectors honest: verify index against database, reindex, fill pending vectors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, select
from sqlmodel import col

from store.db.engine import read_connection, run_write
from store.db.models import Analysis, Embedding, RunMetadata, table_of
from store.db.writes import insert_embedding_rows, vector_problem
from store.errors import PiiKeyMismatch
from store.ingest.records import utc_now
from store.locations import index_directory
from store.vectors.filler import clean_texts, fill_pending
from store.vectors.index import SNAPSHOT_FILE, VectorIndex, floats_problem
from store.vectors.service import embedding_run_row, same_vector

if TYPE_CHECKING:
    from store.vectors.service import VectorService

Progress = Callable[[int, int], None]
REINDEX_CHUNK = 1000
SHOWN_IDS = 10


@dataclass(slots=True)
class VerifyReport:
    """What differs between the vector index and the database; empty lists mean in step."""

    embedder: str
    dimension: int
    index_vectors: int
    database_vectors: int
    analyses: int
    pending: int
    missing_from_index: list[int] = field(default_factory=list)
    foreign_in_index: list[int] = field(default_factory=list)
    without_vector: list[int] = field(default_factory=list)
    other_embedders: dict[str, int] = field(default_factory=dict)
    wrong_dimension: int = 0
    changed_vectors: list[int] = field(default_factory=list)
    unusable_vectors: list[int] = field(default_factory=list)
    snapshot_set_aside: str | None = None
    pii_key_problem: str | None = None
    index_kind: str = "flat"
    recall_check: str | None = None  # the approximate build's measured recall, in words

    @property
    def in_step(self) -> bool:
        """True when index and database agree (pending vectors are reported, not drift)."""
        return not (self.missing_from_index or self.foreign_in_index or self.without_vector
                    or self.other_embedders or self.wrong_dimension or self.changed_vectors
                    or self.unusable_vectors or self.pii_key_problem
                    or self.snapshot_set_aside)

    def lines(self) -> list[str]:
        """A human summary, one finding per line."""
        out = [f"embedder {self.embedder} (dimension {self.dimension}): {self.index_vectors:,} "
               f"vectors in the index, {self.database_vectors:,} in the database, "
               f"{self.analyses:,} analyses, {self.pending:,} pending"]
        if self.recall_check:
            kept = "" if self.index_kind != "flat" else ", too inexact: the exact index is kept"
            out.append(f"index {self.index_kind}: {self.recall_check}{kept}")
        else:
            out.append(f"index {self.index_kind}")
        checks = [
            (self.missing_from_index, "in the database but not in the index"),
            (self.foreign_in_index, "in the index but not in the database (foreign)"),
            (self.without_vector, "analyses with no vector row at all"),
            (self.changed_vectors, "index vectors that differ from the database's"),
            (self.unusable_vectors, "unusable vectors in the database (NULL, empty, NaN or "
                                    "wrong length), left out of the index"),
        ]
        for ids, what in checks:
            if ids:
                shown = ", ".join(str(i) for i in ids[:SHOWN_IDS])
                more = f" (+{len(ids) - SHOWN_IDS:,} more)" if len(ids) > SHOWN_IDS else ""
                out.append(f"{len(ids):,} {what}: analysis ids {shown}{more}")
        for name, count in self.other_embedders.items():
            out.append(f"{count:,} vectors made by another embedder: {name}")
        if self.wrong_dimension:
            out.append(f"{self.wrong_dimension:,} vectors of another dimension")
        if self.pii_key_problem:
            out.append(f"PII key: {self.pii_key_problem}")
        if self.snapshot_set_aside:
            out.append(f"index snapshot set aside ({self.snapshot_set_aside}): searches rebuild "
                       "the index from the database")
        out.append("in step" if self.in_step else "DRIFT: run `incidex reindex` to rebuild")
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: getattr(self, name) for name in self.__slots__} | {"in_step": self.in_step}


def _check_floats(service: VectorService) -> str | None:
    """Why the float rows of an "hnsw-sq8" snapshot cannot be trusted, or None. A load maps
    them without reading them; here every row is read against its checksum, and a snapshot
    that fails is removed, so the next open rebuilds the index from the database."""
    directory = index_directory(service.settings)
    problem = floats_problem(directory)
    if problem is not None:
        (directory / SNAPSHOT_FILE).unlink(missing_ok=True)
        service.forget_index()
    return problem


def verify(service: VectorService, sample: int = 200) -> VerifyReport:
    """Compare the index this process would search with the database, id by id."""
    embedder = service.embedder
    as_found, set_aside = VectorIndex.open_snapshot(index_directory(service.settings),
                                                    embedder.name, embedder.dimension)
    if as_found is not None:
        set_aside = service.snapshot_problem(as_found)
        if set_aside is None:
            set_aside = _check_floats(service)
    # A snapshot set aside is compared as it was found, so the report shows what was wrong.
    index = as_found if as_found is not None else service.rebuild_index()
    try:
        _ = service.scrubber  # checks the PII key against the store's record of it
        key_problem = None
    except PiiKeyMismatch as error:
        key_problem = str(error)
    with read_connection(service.engine) as connection:
        ready = np.fromiter(connection.execute(
            select(col(Embedding.analysis_pk)).where(col(Embedding.status) == "ready",
                                                col(Embedding.embedder) == embedder.name)
        ).scalars(), dtype=np.int64)
        report = VerifyReport(
            embedder=embedder.name, dimension=embedder.dimension, index_vectors=len(index),
            database_vectors=len(ready),
            analyses=connection.execute(select(func.count()).select_from(Analysis)).scalar_one(),
            pending=connection.execute(select(func.count()).select_from(Embedding)
                                       .where(col(Embedding.status) == "pending")).scalar_one())
        analysis_pk = table_of(Analysis).c.id
        report.without_vector = list(connection.execute(
            select(analysis_pk).outerjoin(Embedding, col(Embedding.analysis_pk) == analysis_pk)
            .where(col(Embedding.analysis_pk).is_(None)).order_by(analysis_pk)).scalars())
        report.other_embedders = {f"{name} (dimension {dim})": count for name, dim, count in
                                  connection.execute(
            select(col(Embedding.embedder), col(Embedding.dimension), func.count())
            .where(col(Embedding.embedder) != embedder.name)
            .group_by(col(Embedding.embedder), col(Embedding.dimension)))}
        report.wrong_dimension = connection.execute(
            select(func.count()).select_from(Embedding)
            .where(col(Embedding.embedder) == embedder.name, col(Embedding.status) == "ready",
                   col(Embedding.dimension) != embedder.dimension)).scalar_one()
        held = index.ids()
        report.snapshot_set_aside = set_aside
        report.index_kind = index.kind
        report.recall_check = index.recall_check.describe() if index.recall_check else None
        report.pii_key_problem = key_problem
        report.unusable_vectors = sorted(index.skipped)
        accounted = np.union1d(held, np.fromiter(index.skipped, np.int64, len(index.skipped)))
        report.missing_from_index = np.setdiff1d(ready, accounted).tolist()
        report.foreign_in_index = np.setdiff1d(held, ready).tolist()
        report.changed_vectors = _changed(connection, index, ready, sample)
    return report


def _changed(connection: Any, index: VectorIndex, ready: np.ndarray, sample: int) -> list[int]:
    """Sampled analysis ids whose index vector differs from the database's bytes."""
    if len(ready) == 0:
        return []
    picks = np.random.default_rng(0).choice(ready, size=min(sample, len(ready)), replace=False)
    rows = connection.execute(select(col(Embedding.analysis_pk), col(Embedding.vector))
                              .where(col(Embedding.analysis_pk).in_(picks.tolist()))).all()
    changed = []
    for pk, blob in rows:
        if vector_problem(blob, index.dimension) is not None:
            continue  # listed as unusable already
        held = index.vector(pk)
        if held is not None and not same_vector(held, blob, index.kind):
            changed.append(int(pk))
    return sorted(changed)


def reindex(service: VectorService, pending_only: bool = False,
            progress: Progress | None = None) -> int:
    """Re-embed analyses with the configured embedder and rebuild the index from the database.

    pending_only fills just the vectors left pending (by a slow embedder's saves or an
    unreachable embedder), through the filler that is safe beside others, and analyses with
    no vector row. Returns how many vectors were written.
    """
    written = 0
    if pending_only:
        service.check_embedder()  # EmbedderMismatch: never fill with another embedder
        written = fill_pending(service, progress=None if progress is None else (
            lambda at: progress(at.filled, at.filled + at.pending)))
    else:
        service.begin_reindex()  # a full reindex is how the store moves to a new PII key
    wanted = _analyses_to_embed(service, pending_only)
    for start in range(0, len(wanted), REINDEX_CHUNK):
        chunk = wanted[start : start + REINDEX_CHUNK]
        written += _reembed(service, chunk)
        if progress is not None:
            progress(min(start + REINDEX_CHUNK, len(wanted)), len(wanted))
    if not pending_only:
        service.finish_reindex()
        service.forget_index()
        service.rebuild_index().save_snapshot(index_directory(service.settings))
    return written


def _analyses_to_embed(service: VectorService, pending_only: bool) -> list[int]:
    with read_connection(service.engine) as connection:
        analysis_pk = table_of(Analysis).c.id
        statement = select(analysis_pk).order_by(analysis_pk)
        if pending_only:  # pending rows are the filler's: here only analyses with no row
            statement = statement.outerjoin(
                Embedding, col(Embedding.analysis_pk) == analysis_pk
            ).where(col(Embedding.analysis_pk).is_(None))
        return list(connection.execute(statement).scalars())


def _reembed(service: VectorService, analysis_pks: list[int]) -> int:
    rows, texts = clean_texts(service, analysis_pks)
    if not rows:
        return 0
    vectors, calls = service.embed_texts(texts)
    now = utc_now()
    embedder = service.embedder
    new_rows = [{"analysis_pk": r.id, "embedder": embedder.name, "dimension": vectors.shape[1],
                 "status": "ready", "vector": vectors[i].tobytes(), "updated_at": now}
                for i, r in enumerate(rows)]
    run_rows = [embedding_run_row(call) for call in calls]

    def replace_vectors(connection: Connection) -> None:
        connection.execute(delete(Embedding).where(col(Embedding.analysis_pk).in_(
            [r.id for r in rows])))
        insert_embedding_rows(connection, new_rows)
        if run_rows:
            connection.execute(table_of(RunMetadata).insert(), run_rows)

    run_write(service.engine, replace_vectors)
    return len(new_rows)


def pending_count(engine: Engine) -> int:
    """How many analyses wait for a vector."""
    with read_connection(engine) as connection:
        return int(connection.execute(select(func.count()).select_from(Embedding)
                                      .where(col(Embedding.status) == "pending")).scalar_one())
