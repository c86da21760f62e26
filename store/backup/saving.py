"""A batch save between its journal lines and its commit line (see journal.py for why).

Invariants: no record is committed without its journal line on disk; when the journal cannot
be written, nothing of the batch is written to the database and every record says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from store.backup.entries import journal_body
from store.backup.journal import BatchTicket, Journal
from store.ingest.records import PreparedSave
from store.schemas import SaveResult

log = logging.getLogger("incidex.store")


def save_journalled(journal: Journal, prepared: list[PreparedSave], saved_at: datetime,
                    write: Callable[[], list[SaveResult]],
                    stored_ids: Callable[[list[str]], set[str]]) -> list[SaveResult]:
    """Journal the records not stored yet, run write() (the database transaction), then
    record which of them committed; one result per prepared record, in order."""
    known = stored_ids([p.analysis_id for p in prepared]) if prepared else set()
    bodies: dict[str, dict[str, object]] = {}
    for item in prepared:
        if item.analysis_id not in known and item.analysis_id not in bodies:
            bodies[item.analysis_id] = journal_body(item, saved_at)
    if not bodies:
        return write()
    try:
        ticket = journal.begin(list(bodies.values()))
    except OSError as error:
        problem = error.strerror or str(error)
        log.info("journal not written to %s: %s", journal.directory, problem)
        return [SaveResult(p.incident_id, p.analysis_id, "error",
                           f"{p.label}: journal not written ({problem}); nothing was saved")
                for p in prepared]
    try:
        results = write()
    except BaseException:
        _abort_quietly(journal, ticket)
        raise
    try:
        journal.commit(ticket, [r.analysis_id for r in results
                                if r.status == "saved" and r.analysis_id is not None])
    except OSError as error:
        # The records are committed and their lines are durable; settling the batch from the
        # database later (resolve_unfinished) writes the commit line this could not.
        log.warning("journal commit line not written (%s); it is settled at the next backup",
                    error.strerror)
    return results


def _abort_quietly(journal: Journal, ticket: BatchTicket) -> None:
    try:
        journal.abort(ticket)
    except OSError:
        log.info("journal abort line not written; the batch stays unfinished and is settled "
                 "from the database later")
