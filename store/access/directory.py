"""Who is who: resolving the actor, managing users, and incident restrictions in the database.

Identity: on SQLite the operating-system user running incidex, on PostgreSQL the database role
of the connection (`current_user`). The first actor to open a store with no users becomes its
admin (the store's creator); everyone else needs a row that an admin adds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select, text

from store.access.roles import ROLES, Actor, normalise_teams, teams_text
from store.access.tables import incident_restrictions, users
from store.audit.chain import PG_CHAIN_LOCK_KEY
from store.db.engine import read_connection
from store.errors import StoreError

MAX_NAME_CHARS = 128


@dataclass(frozen=True)
class UserRow:
    """A user as `incidex users list` shows them."""

    name: str
    role: str
    teams: frozenset[str]
    can_purge: bool
    added_at: datetime
    added_by: str


def current_identity(engine: Engine) -> str:
    """The name the store knows the caller by: the database role, or the OS user for SQLite."""
    if engine.dialect.name == "postgresql":
        with read_connection(engine) as connection:
            return str(connection.execute(text("SELECT current_user")).scalar_one())
    return os_user()


def os_user() -> str:
    """The operating-system user running this process."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        import getpass

        return getpass.getuser()


def actor_named(connection: Connection, name: str) -> Actor:
    """The actor for a user name (no role when the store does not know them)."""
    row = connection.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        return Actor(name, None)
    return Actor(name, row.role, normalise_teams(row.teams), bool(row.can_purge))


def claim_if_first(connection: Connection, name: str) -> bool:
    """Make name the admin if the store has no users yet (inside a write transaction)."""
    lock_users(connection)
    if connection.execute(select(func.count()).select_from(users)).scalar_one():
        return False
    connection.execute(users.insert().values(name=name, role="admin", teams="", can_purge=True,
                                             added_at=datetime.now(UTC), added_by=name))
    return True


def has_users(connection: Connection) -> bool:
    """Whether the store has any user yet (a new store has none until its creator opens it)."""
    return connection.execute(select(users.c.name).limit(1)).first() is not None


def lock_users(connection: Connection) -> None:
    """Serialise changes to users with the audit chain's lock (SQLite: the write lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_CHAIN_LOCK_KEY})


def put_user(connection: Connection, name: str, role: str, teams: Iterable[str] | str,
             can_purge: bool, by: str) -> UserRow:
    """Add a user or change their role, teams and purge permission."""
    name = check_user_name(name)
    if role not in ROLES:
        raise StoreError(f"users: unknown role {role!r} (one of {', '.join(ROLES)})")
    if can_purge and role not in ("lead", "admin"):
        raise StoreError(f"users: {name}: only a lead or an admin can purge")
    team_set = normalise_teams(teams if isinstance(teams, str) else list(teams))
    lock_users(connection)
    added_at = datetime.now(UTC)
    values = {"role": role, "teams": teams_text(team_set), "can_purge": can_purge,
              "added_at": added_at, "added_by": by}
    found = connection.execute(select(users.c.name).where(users.c.name == name)).first()
    if found is None:
        connection.execute(users.insert().values(name=name, **values))
    else:
        connection.execute(users.update().where(users.c.name == name).values(**values))
    _keep_an_admin(connection, name)
    return UserRow(name, role, team_set, can_purge, added_at, by)


def _keep_an_admin(connection: Connection, name: str) -> None:
    admins = connection.execute(select(func.count()).select_from(users)
                                .where(users.c.role == "admin")).scalar_one()
    if not admins:
        raise StoreError(f"users: {name}: the store would have no admin left")


def list_users(connection: Connection) -> list[UserRow]:
    """Every user, by name."""
    return [UserRow(row.name, row.role, normalise_teams(row.teams), bool(row.can_purge),
                    row.added_at, row.added_by)
            for row in connection.execute(select(users).order_by(users.c.name))]


def check_user_name(name: str) -> str:
    """A user name as stored; one with control characters or too long is refused."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_CHARS or not cleaned.isprintable():
        raise StoreError(f"users: {name!r} is not a user name (1 to {MAX_NAME_CHARS} printable "
                         "characters)")
    return cleaned


def restrictions(connection: Connection, incident_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """The teams each of these incidents is restricted to (unrestricted ones are absent)."""
    wanted = list(dict.fromkeys(incident_ids))
    found: dict[str, frozenset[str]] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(select(incident_restrictions).where(
            incident_restrictions.c.incident_id.in_(wanted[start:start + 500])))
        found.update((row.incident_id, normalise_teams(row.teams)) for row in rows)
    return found


def hidden_incidents(connection: Connection, actor: Actor) -> set[str]:
    """Every restricted incident whose text this actor may not read."""
    if actor.role == "admin":
        return set()
    rows = connection.execute(select(incident_restrictions.c.incident_id,
                                     incident_restrictions.c.teams))
    return {row.incident_id for row in rows
            if not actor.may_read_restricted(normalise_teams(row.teams))}


def set_restriction(connection: Connection, incident_id: str, teams: frozenset[str],
                    by: str) -> None:
    """Restrict an incident to teams, or lift its restriction (no teams)."""
    connection.execute(incident_restrictions.delete()
                       .where(incident_restrictions.c.incident_id == incident_id))
    if teams:
        connection.execute(incident_restrictions.insert().values(
            incident_id=incident_id, teams=teams_text(teams), restricted_at=datetime.now(UTC),
            restricted_by=by))
