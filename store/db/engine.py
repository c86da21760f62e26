"""Building the one SQLAlchemy engine a process uses, tuned per database."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from store.errors import StoreUnavailable
from store.fileio import private_file
from store.redact import redact_url, safe_reason, secrets_of_url

WRITE_OPTION = "incidex_write"
WRITE_ATTEMPTS = 8
RETRY_FIRST_DELAY_SECONDS = 0.02
RETRY_MAX_DELAY_SECONDS = 1.0
# Page cache of each SQLite connection (KiB): 64 MB, far above the default 2 MB.
SQLITE_CACHE_KIB = 65536
# PostgreSQL aborts one transaction of a lock cycle (40P01) or of a serialisation
# conflict (40001); trying the whole transaction again is the documented remedy.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
# SQLITE_BUSY_SNAPSHOT: a WAL snapshot went stale before its write; the busy timeout
# does not apply to it, a new transaction does.
RETRYABLE_SQLITE_CODES = frozenset({517})
# A concurrent writer committed the same analysis first: the next attempt finds it and
# reports a duplicate (one writer's batch cannot collide with itself: it is deduplicated).
CONFLICT_CONSTRAINTS = frozenset({"analyses_analysis_id_key", "uq_analyses_incident_content"})

T = TypeVar("T")
log = logging.getLogger("incidex.store")


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
    except (ArgumentError, ValueError) as error:
        reason = safe_reason(error, secrets=secrets_of_url(url))
        raise StoreUnavailable(f"cannot open the store: bad database URL {redact_url(url)} "
                               f"({reason})") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_seconds)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_engine(url: str, busy_timeout_seconds: float) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        try:
            # SQLite gives its -wal and -shm files the database file's mode: owner-only too.
            private_file(path)
        except OSError as error:
            raise StoreUnavailable(f"cannot create {path}: {error.strerror}") from None
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
        # A large store's indexes take random inserts (analysis ids, content hashes): keeping
        # more of their pages in memory keeps a batch's writes from re-reading them (the
        # default is 2 MB; pages are only taken as used).
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock up front, so the busy timeout applies instead of a
        # deadlock error when two processes try to upgrade a read lock at once.
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine, raw_errors: bool = False) -> Iterator[Connection]:
    """A transaction meant to write: all of it commits, or none of it.

    An OperationalError becomes StoreUnavailable unless raw_errors (run_write decides then).
    """
    try:
        with (
            engine.connect().execution_options(**{WRITE_OPTION: True}) as connection,
            connection.begin(),
        ):
            yield connection
    except OperationalError as error:
        if raw_errors:
            raise
        raise StoreUnavailable(f"database write failed: {_first_line(error)}") from None


def run_write(engine: Engine, work: Callable[[Connection], T],
              attempts: int = WRITE_ATTEMPTS) -> T:
    """Run work in one write transaction, again from the start (after a jittered back-off)
    when the database aborted it for a conflict with another transaction.

    work must only talk to the database: a retry runs all of it again.
    """
    for attempt in range(1, attempts + 1):
        try:
            with write_transaction(engine, raw_errors=True) as connection:
                return work(connection)
        except DBAPIError as error:
            if attempt == attempts or not is_transient_conflict(error):
                if isinstance(error, OperationalError):
                    reason = _first_line(error)
                    if attempt > 1:
                        reason += f" (after {attempt} attempts)"
                    raise StoreUnavailable(f"database write failed: {reason}") from None
                raise
            delay = min(RETRY_MAX_DELAY_SECONDS, RETRY_FIRST_DELAY_SECONDS * 2 ** (attempt - 1))
            log.info("write transaction aborted (%s); attempt %d of %d in %.0f ms",
                     _first_line(error), attempt + 1, attempts, delay * 1000)
            # Full jitter: writers that collided do not collide again in step.
            time.sleep(random.uniform(0, delay))
    raise AssertionError("unreachable")


def is_transient_conflict(error: DBAPIError) -> bool:
    """Whether the database aborted a transaction only because another one got in its way."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    if sqlstate == "23505":
        diagnostic = getattr(original, "diag", None)
        return getattr(diagnostic, "constraint_name", None) in CONFLICT_CONSTRAINTS
    return getattr(original, "sqlite_errorcode", None) in RETRYABLE_SQLITE_CODES


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
