"""Building the one SQLAlchemy engine a process uses, tuned per database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from store.errors import StoreUnavailable

WRITE_OPTION = "incidex_write"


def normalise_url(url: str) -> str:
    """Map plain postgres URLs onto the psycopg 3 driver that incidex installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for other databases and :memory:."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str, *, busy_timeout_seconds: float = 30.0) -> Engine:
    """Create the engine: SQLite in WAL mode with a busy timeout, or PostgreSQL via psycopg."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreUnavailable(f"cannot open the store: bad database URL ({error})") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_seconds)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_engine(url: str, busy_timeout_seconds: float) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(f"cannot create {path.parent}: {error.strerror}") from None
    engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})
    busy_ms = int(busy_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock up front, so the busy timeout applies instead of a
        # deadlock error when two processes try to upgrade a read lock at once.
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction meant to write: all of it commits, or none of it."""
    try:
        with (
            engine.connect().execution_options(**{WRITE_OPTION: True}) as connection,
            connection.begin(),
        ):
            yield connection
    except OperationalError as error:
        raise StoreUnavailable(f"database write failed: {_first_line(error)}") from None


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads, inside one snapshot transaction."""
    try:
        with engine.connect() as connection, connection.begin():
            yield connection
    except OperationalError as error:
        raise StoreUnavailable(f"database read failed: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
