"""Bringing a database to the newest schema, safely when several processes open it at once."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from store.db.engine import sqlite_path
from store.fileio import private_file

MIGRATIONS_DIRECTORY = Path(__file__).resolve().parent / "migrations"
# The newest revision, known without importing Alembic (a test keeps it equal to Alembic's head).
HEAD_REVISION = "0020"
PG_LOCK_KEY = 0x1C1DE7  # an arbitrary constant shared by every incidex process


def _alembic_config(connection: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def stored_revision(connection: Connection) -> str | None:
    """The revision in alembic_version, read without importing Alembic."""
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` unless it is there already; never loses rows."""
    if revision == "head" and _stored_revision(engine) == HEAD_REVISION:
        return  # the common case, without Alembic's import and script scan
    target = head_revision() if revision == "head" else revision
    with engine.connect() as connection:
        if current_revision(connection) == target:
            return
    with _migration_lock(engine):
        from alembic import command

        with engine.begin() as connection:
            if current_revision(connection) == target:
                return
            command.upgrade(_alembic_config(connection), revision)


def _stored_revision(engine: Engine) -> str | None:
    """The revision in alembic_version, or None when there is no such table yet."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations across processes: a file lock for SQLite, an advisory lock otherwise."""
    database_file = sqlite_path(str(engine.url))
    if database_file is not None:
        lock_path = database_file.with_name(database_file.name + ".migrate-lock")
        with open(private_file(lock_path), "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
                connection.commit()
        return
    yield
