"""A private PostgreSQL cluster that archives WAL: initdb into a temp folder, a free port.

The shared server at 127.0.0.1:5432 is never reconfigured: WAL tests run their own cluster
with `archive_mode = on` and an `archive_command` that copies segments into a folder the store
reads (INCIDEX_BACKUP_PG_WAL_DIR). PostgreSQL refuses to run as root, so when the tests run
as root the cluster's programs run as the `postgres` OS user (runuser), which owns its folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.redis_server import free_port

SERVER_USER = "postgres"


def server_bin() -> Path | None:
    """The newest Debian PostgreSQL server programs' folder, if any."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return candidates[-1].parent if candidates else None


def require_server_bin() -> Path:
    """The server programs; skips the test when absent, fails it when CI=true."""
    import pytest

    found = server_bin()
    if found is not None:
        return found
    message = "PostgreSQL server programs (initdb, pg_ctl) are not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: .ci/run installs postgresql)")
    pytest.skip(message)


class PostgresCluster:
    """initdb, start, stop, and the URL and archive folder of a private cluster."""

    def __init__(self, archive_command: str | None = None) -> None:
        binaries = server_bin()
        if binaries is None:
            raise FileNotFoundError("initdb is not installed")
        self.bin = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="incidex-pgcluster-"))
        self.data = self.directory / "data"
        self.archive = self.directory / "archive"
        self.sockets = self.directory / "socket"
        self.port = free_port()
        self.archive_command = archive_command or (
            f"test ! -f {self.archive}/%f && cp %p {self.archive}/%f.tmp && "
            f"mv {self.archive}/%f.tmp {self.archive}/%f")
        self.archive.mkdir()
        self.sockets.mkdir()
        self._chown(self.directory, self.archive, self.sockets)

    def _chown(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(SERVER_USER)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _as_server(self, program: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, check=False,
                                   cwd=self.directory)
        if completed.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {completed.stderr.strip()}\n{tail}")
        return completed

    def initdb(self) -> None:
        """Create the cluster (trust on its socket and loopback, WAL archived)."""
        self._as_server("initdb", "--pgdata", str(self.data), "--username=postgres",
                        "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "", "listen_addresses = '127.0.0.1'", f"port = {self.port}",
                f"unix_socket_directories = '{self.sockets}'", "wal_level = replica",
                "archive_mode = on", f"archive_command = '{self.archive_command}'",
                "max_wal_senders = 4", "fsync = off", "shared_buffers = '32MB'", ""]))

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._as_server("pg_ctl", "--pgdata", str(self.data), "--log",
                        str(self.directory / "server.log"), "--wait", "start")

    def stop(self) -> None:
        """Stop it fast (no error when it is not running)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                (["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else [])
                + [str(self.bin / "pg_ctl"), "--pgdata", str(self.data), "--mode=fast",
                   "--wait", "stop"], capture_output=True, check=False)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for a database of this cluster (as its superuser)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; its URL."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def __enter__(self) -> PostgresCluster:
        try:
            self.initdb()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop and remove everything."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
