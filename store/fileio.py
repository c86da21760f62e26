"""Files that must never be half-written or escape their folder: safe names, temp files, fsync.

Invariants: a name from safe_name() has no path separator and no leading dot, and distinct ids
give distinct names; a file written through write_temp() + os.replace() is seen whole or not at
all, and is on disk once flush_to_disk() (or fsync_path()) has returned; every folder and file
incidex creates for its data is readable by its owner only (0700 and 0600), whatever the umask.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import re
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import cast

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
MAX_STEM_CHARS = 80
_temp_counter = itertools.count()


def safe_name(identifier: str) -> str:
    """A file-name-safe form of a caller's id: ASCII letters, digits, '.', '_' and '-' only.

    Anything else (path separators, NUL, control characters, dots leading to '..')
    becomes '_'; a changed or long id gets a short hash so that distinct ids stay distinct.
    """
    cleaned = _UNSAFE.sub("_", identifier).strip("._-")[:MAX_STEM_CHARS] or "incident"
    if cleaned != identifier:
        digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        cleaned = f"{cleaned}~{digest}"
    return cleaned


def write_temp(target: Path, payload: bytes, folder: Path | None = None) -> Path:
    """Write payload to a new 0600 temp file beside target, or in `folder` (which must be on
    the same file system, so that a rename is atomic); its name carries the writer's pid."""
    temp = (folder or target.parent) / f".tmp-{os.getpid()}-{next(_temp_counter)}-{target.name}"
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)
    return temp


def flush_to_disk(directory: Path, files: list[Path]) -> None:
    """Make the files' contents durable: one syncfs() on Linux, else an fsync per file."""
    syncfs = _syncfs()
    if syncfs is not None and files:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(descriptor) == 0:
                return
        finally:
            os.close(descriptor)
    for path in files:
        fsync_path(path)


@lru_cache(maxsize=1)
def _syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return cast("Callable[[int], int]", libc.syncfs)
    except (OSError, AttributeError):
        return None


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def private_directory(path: Path) -> Path:
    """Create path and its missing parents readable by the owner only (0700); folders that
    already exist are left as they are (the user may share them on purpose)."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            continue
        # mkdir's mode passes through the umask; chmod does not.
        directory.chmod(PRIVATE_DIRECTORY_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create an empty owner-only (0600) file at path if there is none, so that a library
    opening it later (SQLite, diskcache) finds it private; an existing file is left alone."""
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return path
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    os.close(descriptor)
    return path


def write_private_file(path: Path, payload: bytes) -> Path:
    """Write payload to path atomically (temp file, fsync, rename), owner-only (0600), in
    folders created owner-only."""
    private_directory(path.parent)
    temp = write_temp(path, payload)
    try:
        fsync_path(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


_TEMP_PID = re.compile(r"\.tmp-(\d+)-")
# A temp file whose writer is gone is stale after this long (its pid may live in another
# namespace, where it looks gone while it writes)...
ORPHAN_AFTER_SECONDS = 60.0
# ...and any temp file after this long: a write takes seconds, not hours.
STALE_AFTER_SECONDS = 24 * 3600.0


def sweep_stale_temps(directory: Path, now: float | None = None) -> int:
    """Remove temp files that a crashed or killed writer left in `directory`; how many.

    A temp file goes when its writer's pid is gone and it is over a minute old, or when it is
    over a day old; a writer at work keeps its file fresh and its pid alive.
    """
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        found = _TEMP_PID.search(entry.name)
        if found is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if age > STALE_AFTER_SECONDS or (age > ORPHAN_AFTER_SECONDS
                                             and not pid_alive(int(found.group(1)))):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # another sweeper or the writer's rename got there first
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (ours counts; one we may not signal runs)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
