"""The restore drill: prove the latest backup restores, and measure how long and how recent.

The drill restores the newest snapshot plus the journal into a scratch location (a temp
folder, or a scratch PostgreSQL database), checks it, records the outcome in
`backups/drills.jsonl`, and removes the scratch copy. It never writes to the live store.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from store.backup.codec import Codec
from store.backup.journal import ANALYSIS_ENTRY, iso
from store.backup.restore import (
    DRILL_PREFIX,
    RestoreReport,
    drill_lock,
    drop_postgres_database,
    restore_to,
)
from store.errors import BackupFailed, BodyForgotten, StoreError
from store.fileio import PRIVATE_FILE_MODE, private_directory

if TYPE_CHECKING:
    from store.settings import Settings
    from store.store import Store

DRILL_LOG = "drills.jsonl"
JOURNAL_SAMPLE = 20


@dataclass(slots=True)
class DrillReport:
    """Each check's verdict, the recovery time and the recovery point."""

    started_at: datetime
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    recovery_seconds: float = 0.0
    recovery_point_seconds: float | None = None
    snapshot_id: str | None = None
    source: str = ""

    @property
    def ok(self) -> bool:
        """Whether every check passed (and there was at least one)."""
        return bool(self.checks) and all(passed for _name, passed, _detail in self.checks)

    def check(self, name: str, passed: bool, detail: str) -> None:
        """Record one check."""
        self.checks.append((name, passed, detail))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        values = asdict(self)
        values["started_at"] = iso(self.started_at)
        values["ok"] = self.ok
        values["checks"] = [{"name": n, "ok": p, "detail": d} for n, p, d in self.checks]
        return values


def run_drill(live: Store, codec: Codec, source: Path | None = None,
              restore: Callable[[datetime, str | Path], RestoreReport] | None = None
              ) -> DrillReport:
    """Restore the latest backup into scratch, check it against its manifest and the live
    store, and record the outcome; a failure to restore is a failed check, not an error.
    `restore` (to, into) replaces the snapshot-and-journal restore (the WAL path)."""
    report = DrillReport(datetime.now(UTC), source=str(source or live.backups))
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="incidex-drill-"))
    target = _scratch_target(live, scratch)
    with ExitStack() as held:
        if isinstance(target, str):  # a PostgreSQL copy: marked as ours until dropped
            held.enter_context(drill_lock(live.settings, target))
        _drill_into(live, codec, source, restore, target, scratch, report, began)
    _check_whole_journal(source or live.backups, codec, live, report)
    record_drill(live.backups, report)
    return report


def _drill_into(live: Store, codec: Codec, source: Path | None,
                restore: Callable[[datetime, str | Path], RestoreReport] | None,
                target: str | Path, scratch: Path, report: DrillReport, began: float) -> None:
    """Restore into `target`, check the copy, and remove it whatever happened."""
    restored: RestoreReport | None = None
    try:
        if restore is not None:
            restored = restore(report.started_at, target)
        else:
            restored = restore_to(live.settings, codec, report.started_at, target,
                                  type(live).open, source=source, sealer=live.journal.sealer)
        report.recovery_seconds = time.monotonic() - began
        report.snapshot_id = restored.snapshot_id
        if restored.newest_point is not None:
            report.recovery_point_seconds = (report.started_at
                                             - restored.newest_point).total_seconds()
        _check_restored(live, restored, report)
    except StoreError as error:
        report.recovery_seconds = time.monotonic() - began
        report.check("restore", False, str(error))
    finally:
        if restored is not None and restored.settings.database_url:
            drop_postgres_database(restored.settings)
            _remove_restore_folder(live, restored.settings)
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_restore_folder(live: Store, settings: Settings) -> None:
    """The data folder a scratch PostgreSQL copy kept its index in (data/restores/<db>)."""
    from store.locations import data_directory

    folder = data_directory(settings)
    if folder != data_directory(live.settings) and folder.parent.name == "restores":
        shutil.rmtree(folder, ignore_errors=True)


def _check_whole_journal(backups: Path, codec: Codec, live: Store, report: DrillReport
                         ) -> None:
    """Damage anywhere in the journal, even where the latest restore does not read: a
    restore to an earlier time would need it (bodies of forgotten incidents are no damage)."""
    from store.backup.journal import journal_directory, open_all, scan

    found = scan(journal_directory(backups), codec, sealer=live.journal.sealer)
    forgotten, unopened = open_all(r for b in found.batches.values() for r in b.records)
    problems = [str(d) for d in found.damage] + unopened
    report.check("journal", not problems,
                 f"{found.lines:,} lines in {len(found.files)} day files"
                 + (f", {forgotten:,} records of forgotten incidents" if forgotten else "")
                 + ("; " + "; ".join(problems[:3]) if problems else ""))


def _scratch_target(live: Store, scratch: Path) -> str | Path:
    if live.engine.dialect.name == "postgresql":
        return f"{DRILL_PREFIX}{int(time.time())}_{random.randrange(1 << 16):04x}"
    return scratch / "store"


def _check_restored(live: Store, restored: RestoreReport, report: DrillReport) -> None:
    report.check("restore", True, f"into {restored.target}, snapshot "
                 f"{restored.snapshot_id or '(none: journal only)'}, "
                 f"{restored.records_replayed} records replayed from the journal"
                 + (f", {restored.records_forgotten} skipped (their incidents were forgotten)"
                    if restored.records_forgotten else "")
                 + (f", {restored.incidents_forgotten} forgotten incidents erased"
                    if restored.incidents_forgotten else ""))
    for warning in restored.warnings:
        report.check("restore warning", False, warning)
    _check_counts(restored, report)
    with type(live).open(restored.settings, create=False) as copy:
        _check_integrity(copy, restored, report)
        _check_revision(copy, report)
        verify = copy.verify_vectors()
        report.check("vectors", verify.in_step, _verify_detail(verify))
        _check_journal_sample(copy, restored, report)
        _check_readable(copy, report)
        _check_similar(live, copy, report)


def _check_counts(restored: RestoreReport, report: DrillReport) -> None:
    between = getattr(restored, "counts_between", None)
    if between is not None and restored.snapshot_counts is not None:
        low, high = between
        wrong = [t for t, n in restored.snapshot_counts.items()
                 if not min(low[t], high[t]) <= n <= max(low[t], high[t])]
        report.check("counts", not wrong, f"recovered by WAL {restored.snapshot_counts}; live "
                     f"before {low}, after {high}"
                     + (f"; outside that range: {', '.join(wrong)}" if wrong else ""))
        return
    if restored.manifest_counts is None:
        report.check("counts", True, "no snapshot: the journal alone was replayed")
        return
    same = restored.snapshot_counts == restored.manifest_counts
    report.check("counts", same, f"snapshot {restored.snapshot_counts} vs manifest "
                 f"{restored.manifest_counts}")


def _check_integrity(copy: Store, restored: RestoreReport, report: DrillReport) -> None:
    from store.db.engine import sqlite_path

    path = sqlite_path(str(copy.engine.url))
    amcheck = getattr(restored, "amcheck", None)
    if path is None and amcheck is not None:
        report.check("integrity", bool(getattr(restored, "amcheck_ok", False)),
                     f"{amcheck}; {getattr(restored, 'verifybackup', '')}")
        return
    if path is None:
        report.check("integrity", True, "PostgreSQL: pg_restore loaded every table")
        return
    connection = sqlite3.connect(path)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    report.check("integrity", verdict == [("ok",)], f"integrity_check: {verdict[0][0]}")


def _check_revision(copy: Store, report: DrillReport) -> None:
    from sqlalchemy import text

    from store.db.migrate import HEAD_REVISION

    with copy.engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    report.check("alembic", revision == HEAD_REVISION,
                 f"revision {revision}, head {HEAD_REVISION}")


def _verify_detail(verify: Any) -> str:
    detail = (f"{verify.index_vectors} vectors in the index, {verify.database_vectors} in the "
              f"database, {verify.pending} pending")
    drift = {"missing from the index": len(verify.missing_from_index),
             "foreign in the index": len(verify.foreign_in_index),
             "changed": len(verify.changed_vectors)}
    problems = [f"{count} {what}" for what, count in drift.items() if count]
    if verify.snapshot_set_aside:
        problems.append(f"snapshot set aside: {verify.snapshot_set_aside}")
    return detail + ("; " + ", ".join(problems) if problems else "")


def _check_journal_sample(copy: Store, restored: RestoreReport, report: DrillReport) -> None:
    from store.ingest.records import canonical_json

    records = [r for batch in restored.replayed for r in batch.landed()
               if r.entry == ANALYSIS_ENTRY]
    sample = random.sample(records, min(JOURNAL_SAMPLE, len(records)))
    wrong, forgotten = [], 0
    for record in sample:
        try:
            body = record.body
        except BodyForgotten:
            forgotten += 1  # its incident was forgotten: the restore rightly left it out
            continue
        stored = {a.analysis_id: a for a in copy.analyses(body["incident"]["incident_id"])}
        found = stored.get(record.analysis_id)
        if found is None or canonical_json(found.analysis) != canonical_json(body["analysis"]):
            wrong.append(f"{record.where} ({record.analysis_id})")
    report.check("journal sample", not wrong,
                 f"{len(sample) - len(wrong) - forgotten} of {len(sample) - forgotten} sampled "
                 "journal lines match"
                 + (f" ({forgotten} of forgotten incidents left out)" if forgotten else "")
                 + (f"; differing: {', '.join(wrong[:3])}" if wrong else ""))


def _check_readable(copy: Store, report: DrillReport) -> None:
    """A sample of restored incidents and analyses open with the current keyring (sealed
    columns of the snapshot and rows replayed from the journal alike). An incident forgotten
    after the snapshot was taken comes back from it unreadable (its data keys are deleted):
    counted, not a failure."""
    rows = copy.incidents_page(limit=JOURNAL_SAMPLE).rows
    unreadable: dict[str, str] = {}
    for row in rows:
        detail = copy.incident(row.incident_id)
        problems = [detail.unreadable if detail else None,
                    *(a.unreadable for a in copy.analyses(row.incident_id))]
        found = next((problem for problem in problems if problem), None)
        if found:
            unreadable[row.incident_id] = found
    shredded = set(unreadable) - set(copy.cipher.datakeys.active_keys(unreadable, create=False))
    failing = [f"{incident_id}: {problem}" for incident_id, problem in unreadable.items()
               if incident_id not in shredded]
    summary = (f"{len(rows) - len(unreadable)} of {len(rows)} sampled incidents and their "
               "analyses open with the keyring"
               + (f", {len(shredded)} forgotten since the snapshot (their keys are deleted)"
                  if shredded else ""))
    report.check("keys", not failing, "; ".join([summary, *failing[:3]]))


def _check_similar(live: Store, copy: Store, report: DrillReport) -> None:
    # The first listed incident with an analysis (one added without any has no vector).
    page = copy.incidents_page(limit=JOURNAL_SAMPLE)
    analysed = [row for row in page.rows if row.analysis_count]
    if not analysed:
        report.check("similar", True, "no restored incident has an analysis in the first "
                     f"{JOURNAL_SAMPLE} listed")
        return
    incident_id = analysed[0].incident_id
    try:
        here = [row.incident_id for row in copy.similar(incident_id=incident_id, k=5).hits]
        there = [row.incident_id for row in live.similar(incident_id=incident_id, k=5).hits]
    except StoreError as error:
        report.check("similar", False, f"similar search failed: {error}")
        return
    # The live store may have moved on since the restore point: compare what both hold.
    known = {row for row in there if copy.incident(row) is not None}
    same = [row for row in here if row in known] == [row for row in there if row in known]
    report.check("similar", same, f"incident {incident_id!r}: restored {here}, live {there}")


def record_drill(backups: Path, report: DrillReport) -> None:
    """Append the drill's outcome to backups/drills.jsonl (owner-only)."""
    import os

    private_directory(backups)
    descriptor = os.open(backups / DRILL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                         PRIVATE_FILE_MODE)
    try:
        os.write(descriptor, orjson.dumps(report.as_dict()) + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def last_drills(backups: Path) -> list[dict[str, Any]]:
    """Recorded drills, oldest first (unreadable lines skipped)."""
    try:
        lines = (backups / DRILL_LOG).read_bytes().splitlines()
    except FileNotFoundError:
        return []
    drills = []
    for line in lines:
        try:
            drills.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return drills


__all__ = ["BackupFailed", "DrillReport", "last_drills", "run_drill"]
