"""Purging incidents: by the retention policy or by name (a data-subject request).

One purge removes, per incident: its row and its blind-index tokens (the text index follows by
trigger), its analyses and their vectors, the links and request ids of its usage rows (their
numbers stay, so cost totals do not move), then its data keys, which makes its sealed journal
lines and every copy in older snapshots and mirrors unreadable without touching them (the
journal is append-only and checksummed: nothing is rewritten), and writes a tombstone with no
content in it. `backups` counts the journal records so made unreadable; journal lines written
in clear before the store sealed cannot be shredded, and the report warns about them.
The caller removes the vectors from the index and the cache entries (callbacks).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, text, update

from store.backup.journal import ForgetMark, IncidentLines, incident_lines, journal_directory
from store.crypto import StoreCipher
from store.db.engine import read_connection, write_transaction
from store.db.models import Analysis, Embedding, Incident, PurgeTombstone, RunMetadata, table_of
from store.ingest.records import utc_now

CHUNK = 200


@dataclass(frozen=True, slots=True)
class PurgeCandidate:
    """An incident the retention policy would remove."""

    incident_id: str
    title: str
    severity: str | None
    updated_at: datetime


@dataclass(slots=True)
class PurgeReport:
    """What a purge removed, in rows and keys (`backups`: journal records made unreadable)."""

    incidents: int = 0
    analyses: int = 0
    run_metadata: int = 0
    embeddings: int = 0
    backups: int = 0
    data_keys: int = 0
    not_found: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def retention_candidates(engine: Engine, default_days: int | None,
                         days_by_severity: dict[str, int], now: datetime | None = None
                         ) -> list[PurgeCandidate]:
    """Incidents last updated longer ago than their severity's retention (or the default)."""
    now = now or utc_now()
    incidents = table_of(Incident).c
    named = {severity.lower(): days for severity, days in days_by_severity.items()}
    clauses = [(func.lower(incidents.latest_severity) == severity)
               & (incidents.updated_at < now - timedelta(days=days))
               for severity, days in named.items()]
    if default_days is not None:
        other = or_(incidents.latest_severity.is_(None),
                    func.lower(incidents.latest_severity).not_in(list(named) or [""]))
        clauses.append(other & (incidents.updated_at < now - timedelta(days=default_days)))
    if not clauses:
        return []
    with read_connection(engine) as connection:
        rows = connection.execute(
            select(incidents.incident_id, incidents.title, incidents.latest_severity,
                   incidents.updated_at).where(or_(*clauses)).order_by(incidents.updated_at))
        return [PurgeCandidate(r.incident_id, r.title, r.latest_severity, r.updated_at)
                for r in rows]


def forget_incidents(engine: Engine, cipher: StoreCipher, backups: Path,
                     incident_ids: Sequence[str], *, reason: str,
                     remove_vectors: Callable[[list[int]], None],
                     clear_caches: Callable[[], str | None],
                     journal_forgets: Callable[[list[ForgetMark]], None] | None = None,
                     actor: str | None = None) -> PurgeReport:
    """Remove everything derived from these incidents (see the module docstring); each
    chunk's tombstones are handed to `journal_forgets` once committed, so a restore past the
    purge leaves the incidents out. The tombstones name `actor` (the Store's) as who purged."""
    report = PurgeReport()
    wanted = list(dict.fromkeys(incident_ids))
    actor = (actor or _actor())[:256]
    lines = incident_lines(journal_directory(backups), wanted)
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        pks, marks = _purge_rows(engine, cipher, chunk, actor, reason, lines, report)
        if pks:
            remove_vectors(pks)
        if marks and journal_forgets is not None:
            journal_forgets(marks)
    if report.incidents:
        problem = clear_caches()
        if problem:
            report.warnings.append(problem)
        report.data_keys = cipher.datakeys.delete_incidents(
            [i for i in wanted if i not in report.not_found])
        cipher.forget_keys()
        compact(engine)
        _warn_clear_lines(lines, report)
    return report


def _warn_clear_lines(lines: dict[str, IncidentLines], report: PurgeReport) -> None:
    clear = sum(found.clear for incident_id, found in lines.items()
                if incident_id not in report.not_found)
    if clear:
        report.warnings.append(
            f"{clear:,} journal records of these incidents were written in clear before the "
            "store sealed: they stay readable until the journal days holding them are pruned")


@dataclass(frozen=True, slots=True)
class ErasedRows:
    """The rows one incident's erasure removed or unlinked."""

    analysis_pks: list[int]
    run_metadata: int
    embeddings: int


def erase_incident(connection: Connection, incident_id: str) -> ErasedRows:
    """Delete an incident's row (its indicators and text-index entries follow by cascade and
    trigger), its analyses and their vectors, and unlink its usage rows (their numbers
    stay), in the caller's transaction."""
    incidents = table_of(Incident)
    analyses = table_of(Analysis)
    runs = table_of(RunMetadata)
    embeddings = table_of(Embedding)
    found = connection.execute(
        select(analyses.c.id, analyses.c.analysis_id)
        .where(analyses.c.incident_id == incident_id)).all()
    pks = [row.id for row in found]
    analysis_ids = [row.analysis_id for row in found]
    vectors = connection.execute(delete(embeddings).where(
        embeddings.c.analysis_pk.in_(pks))).rowcount if pks else 0
    unlinked = connection.execute(update(runs).where(or_(
        runs.c.incident_id == incident_id, runs.c.analysis_id.in_(analysis_ids)))
        .values(incident_id=None, analysis_id=None, request_id=None)).rowcount
    connection.execute(delete(analyses).where(analyses.c.incident_id == incident_id))
    connection.execute(delete(incidents).where(incidents.c.incident_id == incident_id))
    return ErasedRows(pks, unlinked, vectors)


def _purge_rows(engine: Engine, cipher: StoreCipher, chunk: list[str], actor: str, reason: str,
                lines: dict[str, IncidentLines], report: PurgeReport
                ) -> tuple[list[int], list[ForgetMark]]:
    """Delete one chunk's rows in one transaction; the vector ids and the tombstones."""
    all_pks: list[int] = []
    marks: list[ForgetMark] = []
    purged_at = utc_now()
    with write_transaction(engine) as connection:
        secure_delete(connection)
        present = set(connection.execute(select(table_of(Incident).c.incident_id)
                                         .where(table_of(Incident).c.incident_id.in_(chunk)))
                      .scalars())
        report.not_found.extend(i for i in chunk if i not in present)
        for incident_id in (i for i in chunk if i in present):
            erased = erase_incident(connection, incident_id)
            shredded = lines[incident_id].sealed
            incident_hash = cipher.index.keyed_hash("tombstone", incident_id)
            connection.execute(insert(table_of(PurgeTombstone)).values(
                incident_hash=incident_hash, purged_at=purged_at, purged_by=actor,
                reason=reason, analyses=len(erased.analysis_pks),
                run_metadata=erased.run_metadata, embeddings=erased.embeddings,
                backups=shredded))
            marks.append(ForgetMark(incident_hash, purged_at, reason))
            report.incidents += 1
            report.analyses += len(erased.analysis_pks)
            report.run_metadata += erased.run_metadata
            report.embeddings += erased.embeddings
            report.backups += shredded
            all_pks.extend(erased.analysis_pks)
    return all_pks, marks


def erase_forgotten(engine: Engine, keyed_hash: Callable[[str, str], str],
                    marks: Sequence[ForgetMark], hashes: dict[str, str] | None = None
                    ) -> tuple[int, list[int]]:
    """Replay of forget lines into a restored store: erase the rows of every incident whose
    id hashes to a mark (nothing else: its data keys are gone already, and a restored copy
    must not touch the key database it shares with the live store), write the tombstones it
    lacks; how many incidents were erased, and the vector ids removed. `hashes` keeps each
    id's keyed hash between calls of one restore (each id is hashed once)."""
    wanted = {mark.incident_hash: mark for mark in marks}
    incidents = table_of(Incident).c
    runs = table_of(RunMetadata).c
    stones = table_of(PurgeTombstone)
    removed: list[int] = []
    with write_transaction(engine) as connection:
        secure_delete(connection)
        known = set(connection.execute(select(incidents.incident_id)).scalars())
        known |= set(connection.execute(select(runs.incident_id).distinct()
                                        .where(runs.incident_id.is_not(None))).scalars())
        hashes = {} if hashes is None else hashes
        for incident_id in known - hashes.keys():
            hashes[incident_id] = keyed_hash("tombstone", incident_id)
        chosen = {incident_id: wanted[hashes[incident_id]] for incident_id in known
                  if hashes[incident_id] in wanted}
        for incident_id, mark in sorted(chosen.items()):
            erased = erase_incident(connection, incident_id)
            removed.extend(erased.analysis_pks)
            stone = connection.execute(select(stones.c.id).where(
                stones.c.incident_hash == mark.incident_hash,
                stones.c.purged_at == mark.at)).first()
            if stone is None:
                connection.execute(insert(stones).values(
                    incident_hash=mark.incident_hash, purged_at=mark.at,
                    purged_by="(restored from the journal)", reason=mark.reason,
                    analyses=len(erased.analysis_pks), run_metadata=erased.run_metadata,
                    embeddings=erased.embeddings, backups=0))
    return len(chosen), removed


def secure_delete(connection: Connection) -> None:
    """SQLite overwrites deleted content with zeros on this connection from now on."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete=ON")


def compact(engine: Engine, rewrite_file: bool = False) -> None:
    """Leave no deleted text behind: SQLite merges the text index and empties the WAL (and
    with rewrite_file, VACUUMs: pages freed before secure_delete was on, such as the old
    clear-text index, are gone only then); PostgreSQL vacuums the tables a purge touched."""
    if engine.dialect.name == "sqlite":
        with write_transaction(engine) as connection:
            secure_delete(connection)
            connection.execute(text("INSERT INTO incidents_fts(incidents_fts) VALUES ('optimize')"))
        # Outside any transaction (the driver's connection is in autocommit: see engine.py).
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if rewrite_file:
                cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("incidents", "analyses", "embeddings", "run_metadata"):
                connection.exec_driver_sql(f"VACUUM {table}")


def _actor() -> str:
    """Who purges when no actor is passed: INCIDEX_ACTOR when set, else the OS user."""
    named = os.environ.get("INCIDEX_ACTOR")
    if named:
        return named[:256]
    try:
        return getpass.getuser()[:256]
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
