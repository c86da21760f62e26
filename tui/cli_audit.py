"""`incidex audit verify|log|anchor` and `incidex users add|list`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from store import ROLES, Settings, UserRow
from tui.cli_search import _open
from tui.exit_codes import ExitCode
from tui.output import say, say_json


@click.group()
def audit() -> None:
    """Check and read the audit log of who did what (leads and admins).

    \b
    Examples:
      incidex audit verify
      incidex audit log --incident INC-2026-0001
      incidex audit log --actor alice --since 2026-11-01 --json
    """


@audit.command("verify")
@click.pass_obj
def verify_audit(settings: Settings) -> None:
    """Check every entry's link and hash, every anchor's signature, that anchored heads are
    still there, and that times never go backwards; exit 5 naming the first bad entry."""
    with _open(settings) as store:
        report = store.verify_audit()
    if not report.ok:
        say(f"incidex: audit log broken: {report.problems[0]}", err=True)
        sys.exit(int(ExitCode.AUDIT_BROKEN))
    say(f"audit log intact: {report.entries:,} entries, {report.anchors:,} signed anchors, "
        f"head at entry {report.head_seq:,}")


@audit.command("log")
@click.option("--actor", help="Only this user's events.")
@click.option("--incident", "incident_id", metavar="ID", help="Only events on this incident.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only events at or after this UTC day or time.")
@click.option("--limit", type=click.IntRange(1), help="At most this many events (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per event.")
@click.pass_obj
def audit_log(settings: Settings, actor: str | None, incident_id: str | None,
              since: datetime | None, limit: int | None, as_json: bool) -> None:
    """Audit events, oldest first."""
    start = since.replace(tzinfo=UTC) if since is not None else None
    with _open(settings) as store:
        entries = store.audit_entries(actor=actor, incident_id=incident_id, since=start,
                                      limit=limit)
    for entry in entries:
        if as_json:
            say_json(entry.as_dict())
            continue
        target = " ".join(part for part in (entry.incident_id, entry.analysis_id) if part)
        say(f"{entry.seq:>6}  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor}  {entry.action}  "
            f"{entry.outcome}  {target or '-'}  {entry.detail}".rstrip())


@audit.command("anchor")
@click.pass_obj
def anchor_audit(settings: Settings) -> None:
    """Sign the log's head now into the anchor file outside the database."""
    with _open(settings) as store:
        anchor = store.anchor_audit()
    if anchor is None:
        say("the audit log is empty: nothing to anchor", err=True)
        return
    say(f"anchored entry {anchor.seq:,}", err=True)


@click.group()
def users() -> None:
    """Who may do what: users (OS users, or PostgreSQL roles) and their roles (admins).

    \b
    Examples:
      incidex users add alice --role analyst --team red
      incidex users add bob --role lead --team red --team blue --purge
      incidex users list
    """


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="The user's role.")
@click.option("--team", "teams", multiple=True, help="A team of the user (repeatable).")
@click.option("--purge", "can_purge", is_flag=True,
              help="May purge incidents (leads and admins only).")
@click.pass_obj
def add_user(settings: Settings, name: str, role: str, teams: tuple[str, ...],
             can_purge: bool) -> None:
    """Add a user, or change their role and teams."""
    with _open(settings) as store:
        row = store.add_user(name, role, teams, can_purge)
    say(f"{_user_line(row)}", err=True)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per user.")
@click.pass_obj
def list_users(settings: Settings, as_json: bool) -> None:
    """Every user with role, teams and purge permission."""
    with _open(settings) as store:
        rows = store.users()
    for row in rows:
        if as_json:
            say_json({"name": row.name, "role": row.role, "teams": sorted(row.teams),
                      "can_purge": row.can_purge, "added_at": row.added_at.isoformat(),
                      "added_by": row.added_by})
        else:
            say(_user_line(row))


def _user_line(row: UserRow) -> str:
    teams = ",".join(sorted(row.teams)) or "-"
    purge = "  purge" if row.can_purge else ""
    return f"{row.name}  {row.role}  teams {teams}{purge}"


@click.command()
@click.argument("incident_id")
@click.option("--team", "teams", multiple=True, help="A team that may read it (repeatable).")
@click.option("--lift", is_flag=True, help="Lift the restriction.")
@click.pass_obj
def restrict(settings: Settings, incident_id: str, teams: tuple[str, ...], lift: bool) -> None:
    """Restrict an incident's text to named teams (leads and admins).

    \b
    Examples:
      incidex restrict INC-2026-0001 --team red
      incidex restrict INC-2026-0001 --lift
    """
    if lift == bool(teams):
        raise click.UsageError("give --team (one or more) or --lift")
    with _open(settings) as store:
        store.restrict_incident(incident_id, () if lift else teams)
    shown = "lifted" if lift else "restricted to " + ", ".join(sorted(set(teams)))
    say(f"{incident_id}: {shown}", err=True)
