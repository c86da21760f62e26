"""Filling pending vectors in the background, batch by batch, safely beside other fillers.

A save with a slow embedder (the local model) stores its analysis with the vector pending; a
filler embeds pending analyses later, in batches: it claims a batch (one short write: the rows
stay pending, their updated_at set to when the claim lapses), embeds it with no transaction
open, and writes the vectors in one transaction that turns only rows still pending into ready
rows, each with a fresh write sequence number (so every process's index catches up on them).

Invariants: a vector is written at most once per pending row, whatever other fillers do (the
write is conditional on the row being pending, under its row lock); a killed filler leaves its
batch pending (nothing is written before the one commit), claimed until the lease lapses, then
filled by the next run; a claim is only a hint that saves a second filler the same work, never
what correctness rests on; a filler never holds a transaction open while it embeds, so saves
are never kept waiting by the model.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select, update
from sqlmodel import col

from store.db.engine import read_connection, run_write
from store.db.identity import allocate_seqs
from store.db.models import Analysis, Embedding, Incident, RunMetadata, table_of
from store.db.queries import opened_row
from store.db.writes import vector_problem
from store.errors import StoreError
from store.ingest.records import utc_now

if TYPE_CHECKING:
    from store.vectors.service import VectorService

log = logging.getLogger("incidex.vectors")
FILL_BATCH = 32  # texts embedded and committed together: seconds of model work at most
LEASE_SECONDS = 300.0  # how long a claimed batch is left to its filler before others take it
IDLE_SECONDS = 5.0  # how often a following filler looks for new pending vectors
OUTAGE_SECONDS = 60.0  # how long a following filler waits after the embedder failed
SNAPSHOT_EVERY_SECONDS = 300.0
CLAIM_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class FillProgress:
    """Where a filler stands: what it filled, what is left in the store (every process's)."""

    filled: int
    pending: int
    texts_per_second: float = 0.0
    problem: str | None = None  # why filling stopped or waits (embedder down, PII key)


FillReport = Callable[[FillProgress], None]


def pending_count(connection: Connection) -> int:
    """How many analyses wait for a vector (the status index alone)."""
    from sqlalchemy import func

    return int(connection.execute(select(func.count()).select_from(Embedding)
                                  .where(col(Embedding.status) == "pending")).scalar_one())


def fill_pending(service: VectorService, *, batch_size: int = FILL_BATCH,
                 stop: threading.Event | None = None, progress: FillReport | None = None,
                 lease_seconds: float = LEASE_SECONDS, follow: bool = False,
                 idle_seconds: float = IDLE_SECONDS) -> int:
    """Embed pending vectors batch by batch, each committed on its own, until none is left
    that no other filler holds (or, following, until `stop` is set); how many it wrote.

    Progress is reported before the first batch and after each. The embedder failing stops
    a single run with the batch released (left pending), and makes a following one wait.
    """
    stop = stop or threading.Event()
    try:
        service.check_embedder()  # never fill with another embedder than the stored vectors'
    except StoreError as error:
        if progress is not None:
            progress(FillProgress(0, _pending(service), problem=_first_line(error)))
        return 0
    filled, seconds = 0, 0.0
    last_snapshot = time.monotonic()
    reported: int | None = None
    if progress is not None:
        reported = _pending(service)
        progress(FillProgress(0, reported))
    while not stop.is_set():
        claimed = claim_batch(service.engine, batch_size, lease_seconds)
        if not claimed:
            left = _pending(service)
            if progress is not None and left != reported:
                progress(FillProgress(filled, left, _rate(filled, seconds)))
                reported = left
            if not follow:
                break
            stop.wait(idle_seconds)
            continue
        started = time.perf_counter()
        try:
            written = fill_batch(service, claimed)
        except StoreError as error:  # the embedder unreachable, the PII key refused
            release(service.engine, claimed)
            problem = _first_line(error)
            log.warning("pending vectors not filled: %s", problem)
            if progress is not None:
                progress(FillProgress(filled, _pending(service), _rate(filled, seconds),
                                      problem))
                reported = None
            if not follow:
                break
            stop.wait(OUTAGE_SECONDS)
            continue
        seconds += time.perf_counter() - started
        filled += written
        service.catch_up_loaded()
        if time.monotonic() - last_snapshot > SNAPSHOT_EVERY_SECONDS:
            _snapshot(service)
            last_snapshot = time.monotonic()
        if progress is not None:
            reported = _pending(service)
            progress(FillProgress(filled, reported, _rate(filled, seconds)))
    if filled:
        _snapshot(service)
    return filled


def claim_batch(engine: Any, batch_size: int, lease_seconds: float) -> list[int]:
    """Claim up to batch_size pending analyses no other filler holds; their primary keys.

    The claim is one short write: the rows stay pending, their updated_at moved to when the
    claim lapses. A row is free when that time has passed (a fresh save's updated_at is its
    save time). Two claimers never get the same row while both claims run: the update is
    conditional on the row being free, under its row lock.
    """
    now = utc_now()
    # A stamp of its own, so that the rows this claim took are told from another's.
    lapses = now + timedelta(seconds=lease_seconds, microseconds=random.randrange(1, 1000))
    table = table_of(Embedding)
    free_now = (table.c.status == "pending", table.c.updated_at <= now)
    with read_connection(engine) as connection:
        # Nothing free is the usual answer (the app asks every few seconds): a read says so
        # without taking the write lock.
        if connection.execute(select(table.c.analysis_pk).where(*free_now).limit(1)).first() \
                is None:
            return []

    def claim(connection: Connection) -> list[int]:
        # Another claimer may take the rows found free between this read and the update (on
        # PostgreSQL; SQLite runs one writer at a time): then look again, past its claim.
        for _attempt in range(CLAIM_ATTEMPTS):
            free = list(connection.execute(
                select(table.c.analysis_pk).where(*free_now)
                .order_by(table.c.analysis_pk).limit(batch_size)).scalars())
            if not free:
                return []
            connection.execute(
                update(table).where(table.c.analysis_pk.in_(free), *free_now)
                .values(updated_at=lapses))
            mine = sorted(connection.execute(
                select(table.c.analysis_pk).where(table.c.analysis_pk.in_(free),
                                                  table.c.status == "pending",
                                                  table.c.updated_at == lapses)).scalars())
            if mine:
                return mine
        return []

    return run_write(engine, claim)


def release(engine: Any, analysis_pks: list[int]) -> None:
    """Hand a claimed batch back (still pending) for the next filler to take at once."""
    table = table_of(Embedding)
    now = utc_now()

    def give_back(connection: Connection) -> None:
        connection.execute(update(table).where(table.c.analysis_pk.in_(analysis_pks),
                                               table.c.status == "pending")
                           .values(updated_at=now))

    run_write(engine, give_back)


def fill_batch(service: VectorService, analysis_pks: list[int]) -> int:
    """Embed these analyses and write the vectors of those still pending, in one transaction;
    how many were written (fewer when another filler, or a forget, got there first)."""
    rows, texts = clean_texts(service, analysis_pks)
    if not rows:
        return 0
    from store.vectors.service import embedding_run_row

    vectors, calls = service.embed_texts(texts)
    embedder = service.embedder
    now = utc_now()
    filled = [{"pk": row.id, "vector": vectors[position].tobytes()}
              for position, row in enumerate(rows)]
    for item in filled:
        problem = vector_problem(item["vector"], vectors.shape[1])
        if problem is not None:
            raise StoreError(f"analysis {item['pk']}: vector: {problem}")
    run_rows = [embedding_run_row(call) for call in calls]
    return run_write(service.engine, lambda connection: write_filled(
        connection, filled, embedder.name, int(vectors.shape[1]), now, run_rows))


def write_filled(connection: Connection, filled: list[dict[str, Any]], embedder: str,
                 dimension: int, now: datetime, run_rows: list[dict[str, Any]]) -> int:
    """Turn the rows of `filled` that are still pending into ready rows, each with a fresh
    sequence number; how many. The still-pending rows are locked first (in key order, so two
    fillers never deadlock), then the sequence counter."""
    table = table_of(Embedding)
    pks = [item["pk"] for item in filled]
    still = select(table.c.analysis_pk).where(table.c.analysis_pk.in_(pks),
                                              table.c.status == "pending"
                                              ).order_by(table.c.analysis_pk)
    if connection.dialect.name == "postgresql":
        still = still.with_for_update()
    pending = set(connection.execute(still).scalars())
    kept = [item for item in filled if item["pk"] in pending]
    if kept:
        first = allocate_seqs(connection, len(kept))
        connection.execute(
            update(table).where(table.c.analysis_pk == bindparam("pk"),
                                table.c.status == "pending")
            .values(status="ready", vector=bindparam("vector"), embedder=embedder,
                    dimension=dimension, seq=bindparam("seq"), updated_at=now),
            [{**item, "seq": first + offset} for offset, item in enumerate(kept)])
    if run_rows:
        connection.execute(table_of(RunMetadata).insert(), run_rows)
    return len(kept)


def clean_texts(service: VectorService, analysis_pks: list[int]) -> tuple[list[Any], list[str]]:
    """The analyses' rows (opened) and their PII-free embedding texts, in key order; analyses
    removed meanwhile are left out."""
    with read_connection(service.engine) as connection:
        rows = [opened_row(connection, row) for row in connection.execute(
            select(col(Analysis.id), col(Analysis.analysis_id), col(Analysis.analysis_json),
                   col(Analysis.incident_id), col(Incident.title), col(Incident.description),
                   col(Incident.initial_findings))
            .join(Incident, col(Incident.incident_id) == col(Analysis.incident_id))
            .where(col(Analysis.id).in_(analysis_pks)).order_by(col(Analysis.id)))]
    texts = [service.clean_text(row.title, row.description, row.initial_findings,
                                json.loads(row.analysis_json)) for row in rows]
    return rows, texts


def _pending(service: VectorService) -> int:
    with read_connection(service.engine) as connection:
        return pending_count(connection)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _rate(filled: int, seconds: float) -> float:
    return filled / seconds if seconds > 0 else 0.0


def _snapshot(service: VectorService) -> None:
    """Rewrite the loaded index's snapshot when enough changed (never fatal to filling)."""
    try:
        service.snapshot()
    except OSError as error:
        log.warning("index snapshot not rewritten: %s", error.strerror)
