"""Snapshots: a consistent copy of the database (and the vector index) with a manifest.

A snapshot is built in `snapshots/.incoming/.tmp-<pid>-<id>/` and renamed into
`snapshots/<id>/` only once every file is written, checked and fsynced and the manifest (its
last file) is on disk: a killed or failed backup leaves at most a temp folder, never a listed
snapshot. SQLite: the online backup API in one step (a consistent copy while others write),
`PRAGMA integrity_check` on the copy. PostgreSQL: `pg_dump --format=custom` reading a snapshot
exported by a REPEATABLE READ transaction, in which the manifest's counts are read too; or,
when the server archives WAL where we can read it, a pg_basebackup (pg_wal.py).

Invariants: the manifest's counts, revision and max vector seq describe exactly the copied
data; `started_at` is before the copy's consistent point and `taken_at` after it, so the copy
holds every batch committed before `started_at` and none committed after `taken_at`;
checksums cover the stored bytes and the plain bytes of every file.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.backup.codec import Codec
from store.backup.frames import file_sha256, write_frames
from store.backup.journal import iso, journal_days, journal_directory, parse_time
from store.db.engine import sqlite_path
from store.errors import BackupFailed
from store.fileio import fsync_path, pid_alive, private_directory

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from store.store import Store

SNAPSHOTS_FOLDER = "snapshots"
INCOMING = ".incoming"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite.zst"
PG_FILE = "database.pgdump.zst"
INDEX_FILE = "vectors.snapshot.zst"
BASE_BACKUP_KIND = "pg-basebackup"
# Given the work folder: (facts, files) of a base backup taken into it; or why none could be
# (the snapshot is then a pg_dump, with that reason in its manifest); or None (not configured).
BaseBackup = Callable[[Path], "tuple[dict[str, Any], dict[str, Any]] | str | None"]
COUNTED_TABLES = ("incidents", "analyses", "run_metadata", "embeddings")
MANIFEST_FORMAT = 1
_PARTIAL = re.compile(r"^\.tmp-(\d+)-")


def snapshots_directory(backups: Path) -> Path:
    """Where finished snapshots live, one folder each."""
    return backups / SNAPSHOTS_FOLDER


def temp_folders(backups: Path) -> list[Path]:
    """Folders of temp files that opening the store sweeps (legacy JSON backups' folder)."""
    return [backups / ".incoming"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One snapshot folder: its manifest, or why it cannot be used."""

    snapshot_id: str
    path: Path
    manifest: dict[str, Any]
    problem: str | None = None

    @property
    def good(self) -> bool:
        """Whether the manifest is sound and every file it names is there at its size."""
        return self.problem is None

    @property
    def taken_at(self) -> datetime:
        """After the copy's consistent point: a restore to any later time may start here."""
        return parse_time(self.manifest["taken_at"])

    @property
    def started_at(self) -> datetime:
        """Before the copy's consistent point: journal batches after it may be missing."""
        return parse_time(self.manifest["started_at"])

    @property
    def size(self) -> int:
        """Bytes on disk."""
        return sum(int(entry["bytes"]) for entry in self.manifest.get("files", {}).values())


def list_snapshots(backups: Path) -> list[Snapshot]:
    """Every snapshot folder, oldest first, each checked for its manifest and file sizes."""
    folder = snapshots_directory(backups)
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except FileNotFoundError:
        return []
    return [_read_snapshot(folder / name) for name in names]


def _read_snapshot(path: Path) -> Snapshot:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        parse_time(manifest["taken_at"])
        files = manifest["files"]
    except FileNotFoundError:
        return Snapshot(path.name, path, {}, f"snapshot {path.name}: no {MANIFEST}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Snapshot(path.name, path, {}, f"snapshot {path.name}: {MANIFEST} unreadable "
                        f"({error})")
    for name, entry in files.items():
        try:
            size = (path / name).stat().st_size
        except FileNotFoundError:
            return Snapshot(path.name, path, manifest, f"snapshot {path.name}: {name} is missing")
        if size != int(entry["bytes"]):
            return Snapshot(path.name, path, manifest, f"snapshot {path.name}: {name} is "
                            f"{size} bytes, its manifest says {entry['bytes']}")
    return Snapshot(path.name, path, manifest)


def verify_snapshot(snapshot: Snapshot) -> str | None:
    """Why the snapshot's files do not match their manifest's checksums, or None."""
    if snapshot.problem is not None:
        return snapshot.problem
    for name, entry in snapshot.manifest["files"].items():
        if file_sha256(snapshot.path / name) != entry["sha256"]:
            return (f"snapshot {snapshot.snapshot_id}: {name} does not match its checksum "
                    "(a changed or corrupted byte)")
    return None


def take_snapshot(store: Store, codec: Codec, base_backup: BaseBackup | None = None
                  ) -> Snapshot:
    """Copy the database and the index snapshot into a new listed snapshot; BackupFailed with
    the path and the reason when it cannot (a full disk, a failed integrity check). On
    PostgreSQL, `base_backup` (pg_wal.py) may take a base backup instead of a pg_dump."""
    backups = store.backups
    remove_partial_snapshots(backups)
    snapshot_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
    incoming = private_directory(snapshots_directory(backups) / INCOMING)
    work = incoming / f".tmp-{os.getpid()}-{snapshot_id}"
    try:
        work.mkdir(mode=0o700)
        manifest = _build(store, codec, work, snapshot_id, base_backup)
        _write_manifest(work, manifest)
        final = snapshots_directory(backups) / snapshot_id
        os.replace(work, final)
        fsync_path(final.parent)
    except (OSError, sqlite3.Error) as error:
        shutil.rmtree(work, ignore_errors=True)
        where = getattr(error, "filename", None) or work
        reason = getattr(error, "strerror", None) or str(error)
        raise BackupFailed(f"backup now: {where}: {reason}; no snapshot was kept (the store is "
                           "untouched)") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _read_snapshot(final)


def _build(store: Store, codec: Codec, work: Path, snapshot_id: str,
           base_backup: BaseBackup | None) -> dict[str, Any]:
    database = sqlite_path(str(store.engine.url))
    started = datetime.now(UTC)
    if database is not None:
        facts, files = _sqlite_snapshot(database, work, codec)
        kind = "sqlite"
    elif store.engine.dialect.name == "postgresql":
        based = base_backup(work) if base_backup is not None else None
        if isinstance(based, tuple):
            (facts, files), kind = based, BASE_BACKUP_KIND
        else:
            facts, files = _postgres_snapshot(store.engine, work, codec)
            kind = "postgresql"
            if based:
                facts["wal_unavailable"] = based
    else:
        raise BackupFailed(f"backup now: no snapshot method for {store.engine.dialect.name}")
    taken = datetime.now(UTC)
    index = _index_file(store, work, codec)
    if index is not None:
        files[INDEX_FILE] = index.pop("file")
    days = journal_days(journal_directory(store.backups))
    return {
        "format": MANIFEST_FORMAT, "id": snapshot_id, "kind": kind,
        "started_at": iso(started), "taken_at": iso(taken),
        "seconds": round((taken - started).total_seconds(), 3),
        "codec": codec.name, "key_ids": codec.key_ids(),
        **facts, "index": index, "files": files,
        "journal_last_day": days[-1].isoformat() if days else None,
    }


def _sqlite_snapshot(database: Path, work: Path, codec: Codec
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    plain = work / ".copy.sqlite"
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(plain)
    try:
        # One step (pages=-1): with a small step and a concurrent writer it can restart forever.
        source.backup(target)
    finally:
        source.close()
    try:
        verdict = target.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            raise BackupFailed(f"backup now: the copy of {database} fails integrity_check: "
                               f"{verdict[0][0]}; no snapshot was kept")
        facts = describe(lambda sql: target.execute(sql).fetchone())
    finally:
        target.close()
    digest = write_frames(plain, work / SQLITE_FILE, codec)
    plain.unlink()
    return {**facts, "integrity_check": "ok"}, {SQLITE_FILE: _file_entry(digest)}


def describe(fetch: Callable[[str], Any]) -> dict[str, Any]:
    """Row counts, Alembic revision, store id and max vector seq of a database."""
    counts = {table: int(fetch(f"SELECT count(*) FROM {table}")[0]) for table in COUNTED_TABLES}
    revision = fetch("SELECT version_num FROM alembic_version")[0]
    store_id = fetch("SELECT store_id FROM store_info WHERE id = 1")[0]
    max_seq = fetch("SELECT max(seq) FROM embeddings")[0]
    return {"alembic_revision": revision, "store_id": store_id, "counts": counts,
            "max_vector_seq": int(max_seq or 0)}


def _file_entry(digest: Any) -> dict[str, Any]:
    return {"sha256": digest.sha256, "bytes": digest.size, "plain_sha256": digest.plain_sha256,
            "plain_bytes": digest.plain_size}


def _postgres_snapshot(engine: Engine, work: Path, codec: Codec
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    from sqlalchemy import text

    plain = work / ".dump.pgdump"
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            exported = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = describe(lambda sql: connection.execute(text(sql)).one())
            run_pg_tool("pg_dump", engine, ["--format=custom", f"--snapshot={exported}",
                                            f"--file={plain}", *schema_options(engine)])
    digest = write_frames(plain, work / PG_FILE, codec)
    plain.unlink()
    return facts, {PG_FILE: _file_entry(digest)}


def schema_options(engine: Engine) -> list[str]:
    """pg_dump's --schema for a URL whose search_path names one (the tests' private schemas)."""
    schema = url_schema(engine)
    return [f"--schema={schema}"] if schema else []


def url_schema(engine: Engine) -> str | None:
    """The schema a PostgreSQL URL's `options=-csearch_path=...` selects, if any."""
    options = engine.url.query.get("options")
    text = options if isinstance(options, str) else " ".join(options or ())
    found = re.search(r"search_path=([A-Za-z0-9_]+)", text)
    return found.group(1) if found else None


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client program (PATH first, then Debian's versioned folders)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not candidates:
        raise BackupFailed(f"{name} is not installed (Debian: apt-get install "
                           "postgresql-client)")
    return str(candidates[-1])


def pg_environment(url: Any, host: str | None = None, port: int | None = None,
                   database: str | None = None) -> dict[str, str]:
    """The environment a PostgreSQL program reaches the URL's server with (or another host
    and port: a scratch server's socket, which takes no password)."""
    environment = {**os.environ, "PGHOST": host or url.host or "localhost",
                   "PGPORT": str(port or url.port or 5432), "PGUSER": url.username or "",
                   "PGDATABASE": database or url.database or "", "PGCONNECT_TIMEOUT": "10"}
    if url.password and host is None:
        environment["PGPASSWORD"] = str(url.password)
    return environment


def _die_with_parent() -> None:
    """In a child: be killed when the process that started it dies (kill -9 included)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_pg_program(program: str, arguments: list[str],
                   environment: dict[str, str] | None = None, user: str | None = None,
                   what: str | None = None) -> str:
    """Run a PostgreSQL program (a name, or a path; as `user` when we are root), killed with
    this process; BackupFailed with its first error line when it fails. Its output."""
    command = [pg_tool(program) if "/" not in program else program, *arguments]
    if user is not None and os.geteuid() == 0:
        command = ["runuser", "-u", user, "--", *command]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True,
                               check=False, preexec_fn=_die_with_parent)  # noqa: PLW1509
    if completed.returncode != 0:
        lines = [line for line in (completed.stderr + completed.stdout).splitlines()
                 if line.strip()]
        raise BackupFailed(f"{what or program} failed: "
                           f"{lines[0] if lines else completed.returncode}")
    return completed.stdout


def run_pg_tool(name: str, engine: Engine, arguments: list[str], database: str | None = None
                ) -> None:
    """Run a PostgreSQL client program against the engine's server; BackupFailed with its
    first error line when it fails."""
    run_pg_program(name, arguments, pg_environment(engine.url, database=database))


def _index_file(store: Store, work: Path, codec: Codec) -> dict[str, Any] | None:
    """The vector index snapshot, copied as it is (a cache: a restore rebuilds it if it does
    not match), with its identity from its header."""
    from store.locations import index_directory
    from store.vectors.index import SNAPSHOT_FILE

    source = index_directory(store.settings) / SNAPSHOT_FILE
    with _stable_copy(source, work) as copy:
        if copy is None:
            return None
        header = _index_header(copy)
        digest = write_frames(copy, work / INDEX_FILE, codec)
    return {"file": _file_entry(digest), "embedder": header.get("embedder"),
            "count": header.get("count"), "high_water_mark": header.get("high_water_mark"),
            "store_id": header.get("store_id"), "checksum": header.get("checksum")}


@contextmanager
def _stable_copy(source: Path, work: Path) -> Iterator[Path | None]:
    """A private copy of a file that is replaced (not rewritten) by its writer."""
    copy = work / ".index.copy"
    try:
        shutil.copyfile(source, copy)
    except FileNotFoundError:
        yield None
        return
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def _index_header(path: Path) -> dict[str, Any]:
    from store.vectors.index import SNAPSHOT_MAGIC

    with open(path, "rb") as handle:
        if handle.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
            return {}
        length = int.from_bytes(handle.read(4), "little")
        header = json.loads(handle.read(length))
    return header if isinstance(header, dict) else {}


def _write_manifest(work: Path, manifest: dict[str, Any]) -> None:
    descriptor, temp = tempfile.mkstemp(dir=work, prefix=".manifest-")
    with open(descriptor, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, work / MANIFEST)
    fsync_path(work)


def remove_partial_snapshots(backups: Path) -> int:
    """Delete temp folders of backups whose process is gone; how many."""
    incoming = snapshots_directory(backups) / INCOMING
    removed = 0
    try:
        entries = list(os.scandir(incoming))
    except FileNotFoundError:
        return 0
    for entry in entries:
        found = _PARTIAL.match(entry.name)
        if found is None or pid_alive(int(found.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def delete_snapshot(snapshot: Snapshot) -> None:
    """Remove a snapshot folder (retention); renamed away first so it is never half-listed."""
    doomed = snapshot.path.parent / INCOMING / f".tmp-{os.getpid()}-deleting-{snapshot.snapshot_id}"
    private_directory(doomed.parent)
    os.replace(snapshot.path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
