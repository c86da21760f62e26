"""`incidex backup now|list|restore|drill|sync|run-due|schedule|export|fold`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from store import Backups, BackupStatus, Settings, StoreError, as_utc, schedule_units
from tui.cli_search import _open
from tui.exit_codes import ExitCode
from tui.output import say, say_json

EPILOG = """\b
Examples:
  incidex backup now                       snapshot the store (consistent while others write)
  incidex backup list                      snapshots, journal days, oldest restorable time
  incidex backup restore --to 2026-11-28T09:00:00Z      into data/restores/<time>/
                                           (PostgreSQL: into a new database; by WAL when
                                           INCIDEX_BACKUP_PG_WAL_DIR is the server's archive)
  incidex --data-dir data/restores/<time> verify         look at what was restored
  incidex backup drill                     restore into scratch, check it, time it
  incidex backup sync                      bring the mirrors (folders, s3:// buckets) up to date
  incidex backup restore --from s3://bucket/incidex --to now     from a bucket mirror
  incidex backup run-due                   what is due today (for a timer or cron)
  incidex backup schedule --print          a systemd timer and a cron line
  incidex backup export --incident INC-1   one JSON file to attach to a ticket
"""


@click.group(epilog=EPILOG)
def backup() -> None:
    """Snapshots, the journal of saved analyses, restore to a time, and the restore drill."""


def _backups(store: Any) -> Backups:
    return Backups(store)


@backup.command()
@click.option("--json", "as_json", is_flag=True, help="The snapshot's manifest as JSON.")
@click.pass_obj
def now(settings: Settings, as_json: bool) -> None:
    """Take a snapshot now: database, vector index, manifest (exit 1 if it fails)."""
    with _open(settings) as store:
        backups = _backups(store)
        snapshot = backups.now()
        copies = backups.copies(snapshot)
    manifest = snapshot.manifest
    if as_json:
        say_json({**snapshot.manifest, "copies": [str(c) for c in copies]})
    else:
        counts = manifest["counts"]
        say(f"snapshot {snapshot.snapshot_id} ({_kind(manifest)}): "
            f"{counts['incidents']:,} incidents, "
            f"{counts['analyses']:,} analyses, {_size(snapshot.size)}, "
            f"{manifest['seconds']:.1f} s, revision {manifest['alembic_revision']}"
            + (f", copied to {len(copies)} mirrors" if copies else ""))
    if manifest.get("wal_unavailable"):
        say(f"incidex: note: no WAL base backup ({manifest['wal_unavailable']}); took a "
            "pg_dump snapshot (restores replay the journal)", err=True)
    for problem in backups.mirror_problems:
        say(f"incidex: {problem}; the snapshot is kept in the primary folder", err=True)
    if backups.mirror_problems:
        sys.exit(int(ExitCode.RECORDS_FAILED))


@backup.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.pass_obj
def list_backups(settings: Settings, as_json: bool) -> None:
    """Snapshots, journal days with sizes, the oldest restorable time and the last drill."""
    with _open(settings) as store:
        backups = _backups(store)
        status = backups.status()
        copies = {s.snapshot_id: [str(m) for m in backups.copies(s)]
                  for s in status.snapshots if s.good}
        day_copies = {j.day.isoformat(): [str(m) for m in backups.journal_copies(j.path)]
                      for j in status.journal}
        mirrors = [str(m) for m in backups.mirrors] + [str(b) for b in backups.buckets]
        archive = backups.archive_summary(status.snapshots)
    if as_json:
        say_json({**_status_json(status), "copies": copies, "journal_copies": day_copies,
                  "mirrors": mirrors, "wal_archive": archive}, default=str)
        return
    for snapshot in status.snapshots:
        if snapshot.good:
            counts = snapshot.manifest["counts"]
            held = copies[snapshot.snapshot_id]
            say(f"snapshot {snapshot.snapshot_id}  {_kind(snapshot.manifest)}  "
                f"taken {snapshot.manifest['taken_at']}  "
                f"{_size(snapshot.size)}  {counts['analyses']:,} analyses  "
                f"copies: primary{''.join(', ' + m for m in held)}")
        else:
            say(f"snapshot {snapshot.snapshot_id}  NOT USABLE: {snapshot.problem}")
    for day in status.journal:
        held = day_copies[day.day.isoformat()]
        say(f"journal  {day.day.isoformat()}  {_size(day.size)}  "
            f"copies: primary{''.join(', ' + m for m in held)}")
    if status.legacy_files:
        say(f"{status.legacy_files:,} per-analysis JSON files wait to be folded "
            "(`incidex backup fold`)")
    for mirror in mirrors:
        say(f"mirror   {mirror}")
    if archive:
        say(archive)
    oldest = status.oldest_restorable
    say(f"oldest restorable time: {oldest.isoformat() if oldest else 'none yet'}")
    drill = status.last_drill
    if drill is not None:
        say(f"last drill: {drill['started_at']} {'passed' if drill['ok'] else 'FAILED'}")
    _warn_if_stale(status)


def _kind(manifest: dict[str, Any]) -> str:
    """What a snapshot is and how a restore to a later time gets there."""
    kind = manifest.get("kind")
    if kind == "pg-basebackup":
        return f"pg_basebackup + WAL from {manifest['wal']['archive']}"
    if kind == "postgresql":
        return "pg_dump + journal"
    return f"{kind} + journal"


def _warn_if_stale(status: BackupStatus) -> None:
    last = status.last_good_snapshot
    if last is None:
        say("incidex: warning: no good snapshot yet (`incidex backup now`)", err=True)
    elif (datetime.now(UTC) - last.taken_at).total_seconds() > 86400:
        say(f"incidex: warning: the last good snapshot is from {last.manifest['taken_at']}, "
            "over a day old", err=True)


def _status_json(status: BackupStatus) -> dict[str, Any]:
    return {
        "snapshots": [{"id": s.snapshot_id, "good": s.good, "problem": s.problem,
                       "taken_at": s.manifest.get("taken_at"), "kind": s.manifest.get("kind"),
                       "bytes": s.size if s.good else None,
                       "counts": s.manifest.get("counts")} for s in status.snapshots],
        "journal": [{"day": j.day.isoformat(), "bytes": j.size} for j in status.journal],
        "oldest_restorable": status.oldest_restorable,
        "last_drill": status.last_drill,
        "legacy_files": status.legacy_files,
    }


def _parse_time(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC)
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time such as "
                                 "2026-11-28T09:00:00Z (or 'now')") from None


@backup.command()
@click.option("--to", "to_text", required=True, metavar="TIME",
              help="Restore the store as it was at TIME (ISO 8601, UTC unless it says; or now).")
@click.option("--into", metavar="DIR",
              help="New directory (SQLite) or database name (PostgreSQL). "
                   "[default: DATA_DIR/restores/<time>, or <db>_restore_<time>]")
@click.option("--from", "source", metavar="MIRROR",
              help="Restore from this backups folder or s3://bucket/prefix (a mirror) instead "
                   "of DATA_DIR/backups.")
@click.option("--in-place", is_flag=True,
              help="Replace the live store with the restored one (SQLite; asks first).")
@click.option("--yes", is_flag=True, help="Do not ask before --in-place.")
@click.pass_obj
def restore(settings: Settings, to_text: str, into: str | None, source: str | None,
            in_place: bool, yes: bool) -> None:
    """Restore the store as of a time: the newest snapshot before it plus the journal."""
    to = _parse_time(to_text)
    if in_place and into:
        raise click.UsageError("--in-place and --into exclude each other")
    if in_place and not yes and not click.confirm(
            "Replace the live store with its state at " + to.isoformat() +
            "? (the current database is kept beside it)", err=True):
        raise click.Abort
    with _open(settings) as store:
        backups = _backups(store)
        if in_place:
            report, kept = backups.restore_in_place(to)
            say(f"restored in place to {to.isoformat()}; the previous database is {kept}")
        else:
            report = backups.restore(to, into, source)
    for warning in report.warnings:
        say(f"incidex: warning: {warning}", err=True)
    if not in_place:
        recovered = getattr(report, "recovery_target", None)
        replayed = (f"WAL replayed to {recovered}" if recovered
                    else f"{report.records_replayed:,} records replayed")
        say(f"restored to {to.isoformat()} into {report.target} (snapshot "
            f"{report.snapshot_id or 'none: journal only'}, {replayed}, "
            f"{report.seconds:.1f} s)")
        if getattr(report, "amcheck", None):
            say(str(report.amcheck))  # type: ignore[attr-defined]
        if report.records_forgotten:
            say(f"{report.records_forgotten:,} journal records skipped: their incidents were "
                "forgotten (their data keys are deleted)")
        if report.entries_replayed:
            say(f"{report.entries_replayed:,} other journaled writes replayed (incidents added "
                "without an analysis, usage rows, restrictions)")
        if report.incidents_forgotten:
            say(f"{report.incidents_forgotten:,} incidents erased again: the journal says they "
                "were forgotten before that time")
        if report.settings.database_url:
            say(f"open it with: INCIDEX_DATABASE_URL='{_masked(report.settings)}' incidex "
                f"--data-dir {report.settings.data_dir}")
        else:
            say(f"open it with: incidex --data-dir {report.target}")


def _masked(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url or "").render_as_string(hide_password=True)


@backup.command()
@click.option("--from", "source", metavar="MIRROR",
              help="Drill from this backups folder or s3://bucket/prefix (a mirror).")
@click.option("--json", "as_json", is_flag=True, help="The drill's report as JSON.")
@click.pass_obj
def drill(settings: Settings, source: str | None, as_json: bool) -> None:
    """Restore the latest backup into scratch and check it; exit 1 if any check fails."""
    with _open(settings) as store:
        report = _backups(store).drill(source)
    if as_json:
        say_json(report.as_dict())
    else:
        for name, passed, detail in report.checks:
            say(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
        point = report.recovery_point_seconds
        say(f"recovery time {report.recovery_seconds:.2f} s, recovery point "
            f"{'-' if point is None else f'{point:.1f} s'} old")
    if not report.ok:
        sys.exit(int(ExitCode.RECORDS_FAILED))


@backup.command()
@click.pass_obj
def sync(settings: Settings) -> None:
    """Bring every mirror (folders, s3:// buckets) up to date, without a snapshot."""
    with _open(settings) as store:
        backups = _backups(store)
        problems = backups.sync()
        count = len(backups.mirrors) + len(backups.buckets)
    for problem in problems:
        say(f"incidex: {problem}", err=True)
    say(f"{count - len(problems)} of {count} mirrors up to date")
    if problems:
        sys.exit(int(ExitCode.RECORDS_FAILED))


@backup.command(name="run-due")
@click.pass_obj
def run_due(settings: Settings) -> None:
    """Do what is due: a daily snapshot, the retention prune, a weekly drill (idempotent);
    then fill the vectors saves left pending (the local model's)."""
    with _open(settings) as store:
        done = _backups(store).run_due(settings.backup_keep_daily, settings.backup_keep_weekly)
        done += _fill_pending_vectors(store)
    for line in done or ["nothing due"]:
        say(line)


def _fill_pending_vectors(store: Any) -> list[str]:
    """Fill pending vectors (beside any other filler); what was done, in a line or none."""
    from store import FillProgress

    last: list[FillProgress] = []
    filled = store.fill_pending_vectors(progress=last.append)
    problem = last[-1].problem if last else None
    if problem is not None:
        return [f"pending vectors: {filled:,} filled, {last[-1].pending:,} left ({problem})"]
    return [f"filled {filled:,} pending vectors"] if filled else []


@backup.command()
@click.option("--print", "print_units", is_flag=True, required=True,
              help="Print a systemd service and timer, and a cron line.")
@click.option("--hour", type=click.IntRange(0, 23), default=3, show_default=True,
              help="UTC hour of the daily run.")
@click.pass_obj
def schedule(settings: Settings, print_units: bool, hour: int) -> None:
    """Print how to run `incidex backup run-due` daily (systemd timer, or cron)."""
    from store import data_directory

    units = schedule_units(data_directory(settings), hour)
    for name in ("incidex-backup.service", "incidex-backup.timer"):
        say(f"# ~/.config/systemd/user/{name}\n{units[name]}")
    say("# then: systemctl --user daemon-reload && systemctl --user enable --now "
        "incidex-backup.timer\n")
    say(f"# or one crontab line (crontab -e):\n{units['cron']}")


@backup.command()
@click.option("--incident", "incident_id", required=True, help="The incident's id.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write it. [default: ./<incident>.json]")
@click.pass_obj
def export(settings: Settings, incident_id: str, out: Path | None) -> None:
    """Write one incident with all its analyses and usage as a JSON file (for a ticket)."""
    from store import safe_name, write_private_file
    from tui.incident_export import incident_json

    with _open(settings) as store:
        detail = store.incident(incident_id)
        if detail is None:
            raise StoreError(f"backup export: no incident {incident_id!r}")
        analyses = store.analyses(incident_id)
    target = out or Path(f"{safe_name(incident_id)}.json")
    write_private_file(target, incident_json(detail, analyses).encode())
    say(f"{target}: incident {incident_id!r} with {len(analyses)} analyses", err=True)


@backup.command()
@click.pass_obj
def fold(settings: Settings) -> None:
    """Fold per-analysis JSON backups of earlier versions into the journal (resumable)."""
    with _open(settings) as store:
        report = _backups(store).fold_legacy()
    for problem in report.unreadable:
        say(f"incidex: not folded: {problem}", err=True)
    say(f"{report.folded:,} legacy backup files folded into the journal")
    if report.unreadable:
        sys.exit(int(ExitCode.RECORDS_FAILED))


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]
    return f"{size} B"
