"""`incidex keys status|rotate|check|retire|encrypt-store`, `incidex purge` and `incidex forget`."""

from __future__ import annotations

import sys
from typing import Any

import click

from store import Settings
from tui.cli_search import _open, _progress
from tui.exit_codes import ExitCode
from tui.output import say, say_json


@click.group()
def keys() -> None:
    """The keys that seal incident text: status, rotation, checks, sealing an old store.

    \b
    Examples:
      incidex keys status
      incidex keys rotate --reencrypt
      incidex keys check
      incidex keys retire kek-20261128-3f2a91c0
      incidex keys encrypt-store
    Keys live in INCIDEX_SECRETS_DIR/keyring (default ~/.config/incidex/secrets/keyring).
    """


@keys.command()
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON object.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Key ids, which is primary, how many data keys and rows each protects."""
    with _open(settings) as store:
        found = store.keys_status()
    if as_json:
        say_json({"keyring": found.keyring, "key_database": found.key_database,
                  "sealing": found.sealing, "clear_rows": found.clear_rows,
                  "keys": [vars_of(key) for key in found.keys]})
        return
    say(f"keyring {found.keyring}")
    say(f"key database {found.key_database}")
    for key in found.keys:
        marks = ("primary" if key.primary else "") + ("" if key.present else " MISSING")
        say(f"  {key.key_id:<28} {marks.strip():<16} {key.data_keys:>10,} data keys "
            f"{key.rows:>10,} rows")
    if found.clear_rows:
        say(f"{found.clear_rows:,} rows in clear text (run `incidex keys encrypt-store`)")
    if not found.sealing:
        say("new records are NOT sealed (INCIDEX_ENCRYPT_AT_REST is off)")


def vars_of(key: Any) -> dict[str, Any]:
    """A KeyInfo as a dict."""
    return {name: getattr(key, name) for name in key.__slots__}


@keys.command()
@click.option("--reencrypt", is_flag=True,
              help="Also give every incident a new data key and reseal its rows (resumable: "
              "run it again after an interruption).")
@click.pass_obj
def rotate(settings: Settings, reencrypt: bool) -> None:
    """A new primary key; every data key rewrapped with it (fast)."""
    with _open(settings) as store:
        new_key = store.rotate_keys()
        say(f"new primary key {new_key}; every data key rewrapped with it", err=True)
        if reencrypt:
            _reencrypt(store)


def _reencrypt(store: Any) -> None:
    with _progress("reencrypt") as progress:
        task = progress.add_task("reencrypt", total=None)
        done = store.reencrypt(
            lambda count, total: progress.update(task, completed=count, total=total))
    say(f"{done:,} incidents resealed with new data keys", err=True)


@keys.command()
@click.pass_obj
def check(settings: Settings) -> None:
    """Open every sealed value with the keyring; exit 1 when any does not."""
    with _open(settings) as store, _progress("check") as progress:
        task = progress.add_task("check", total=None)
        report = store.check_keys(lambda count, _total: progress.update(task, completed=count))
    for problem in report.problems[:20]:
        say(problem, err=True)
    if len(report.problems) > 20:
        say(f"... and {len(report.problems) - 20:,} more problems", err=True)
    say(f"{report.rows_checked:,} rows checked, {len(report.problems):,} problems", err=True)
    if report.problems:
        sys.exit(ExitCode.RECORDS_FAILED)


@keys.command()
@click.argument("key_id")
@click.pass_obj
def retire(settings: Settings, key_id: str) -> None:
    """Move a key that wraps no data key any more out of the keyring (into retired/)."""
    with _open(settings) as store:
        where = store.retire_key(key_id)
    say(f"key {key_id} retired to {where}; keep it with your key backups or delete it",
        err=True)


@keys.command("encrypt-store")
@click.pass_obj
def encrypt_store(settings: Settings) -> None:
    """Seal a clear-text store in place, chunk by chunk (resumable; reads work meanwhile)."""
    with _open(settings) as store, _progress("encrypt") as progress:
        task = progress.add_task("encrypt", total=None)
        done = store.encrypt_store(
            lambda count, total: progress.update(task, completed=count, total=total))
        clear = store.clear_journal_records()
    say(f"{done:,} incidents sealed", err=True)
    if clear:
        say(f"{clear:,} backup journal records written before stay in clear (the journal is "
            "append-only); they leave with their journal days (the retention of "
            "`incidex backup run-due`), and forgetting an incident cannot shred them", err=True)


@click.command()
@click.option("--dry-run", is_flag=True, help="List what the retention policy would remove.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per incident.")
@click.pass_obj
def purge(settings: Settings, dry_run: bool, as_json: bool) -> None:
    """Remove the incidents the retention policy (INCIDEX_RETENTION_DAYS,
    INCIDEX_RETENTION_DAYS_BY_SEVERITY) says are due.

    \b
    Examples:
      INCIDEX_RETENTION_DAYS=365 incidex purge --dry-run
      incidex purge
    """
    if settings.retention_days is None and not settings.retention_days_by_severity:
        say("no retention policy set (INCIDEX_RETENTION_DAYS or "
            "INCIDEX_RETENTION_DAYS_BY_SEVERITY); nothing to purge", err=True)
        return
    with _open(settings) as store:
        due = store.purge_candidates()
        for candidate in due:
            if as_json:
                say_json({"incident_id": candidate.incident_id, "severity": candidate.severity,
                          "updated_at": candidate.updated_at.isoformat()})
            else:
                say(f"{candidate.incident_id}\t{candidate.severity or '-'}\t"
                    f"{candidate.updated_at:%Y-%m-%d}")
        if dry_run:
            say(f"{len(due):,} incidents would be purged", err=True)
            return
        report = store.forget([candidate.incident_id for candidate in due], reason="retention")
    _say_report(report)


@click.command()
@click.argument("incident_ids", nargs=-1, required=True)
@click.pass_obj
def forget(settings: Settings, incident_ids: tuple[str, ...]) -> None:
    """Erase these incidents now, with everything derived from them (a data-subject request).

    \b
    Example: incidex forget INC-2026-0042 INC-2026-0043
    """
    with _open(settings) as store:
        report = store.forget(list(incident_ids))
    for missing in report.not_found:
        say(f"{missing}: no such incident", err=True)
    _say_report(report)
    if report.not_found:
        sys.exit(ExitCode.RECORDS_FAILED)


def _say_report(report: Any) -> None:
    for warning in report.warnings:
        say(warning, err=True)
    say(f"{report.incidents:,} incidents purged: {report.analyses:,} analyses, "
        f"{report.embeddings:,} vectors, {report.backups:,} journal records made unreadable, "
        f"{report.data_keys:,} data keys deleted; {report.run_metadata:,} usage rows kept "
        "without their links", err=True)
