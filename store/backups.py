"""JSON backups of analyses: atomic files with names that can never leave the backup directory."""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import orjson

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
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


@dataclass(frozen=True, slots=True)
class BackupItem:
    """One analysis to back up."""

    incident_id: str
    analysis_id: str
    created_at: datetime
    document: dict[str, Any]


def backup_path(directory: Path, item: BackupItem) -> Path:
    """Where the backup of one analysis lives: a folder per day (so no folder grows past a
    day's analyses), then incident and analysis ids."""
    day = item.created_at.strftime("%Y-%m/%d")
    name = f"{safe_name(item.incident_id)}.{safe_name(item.analysis_id)}.json"
    # safe_name() leaves no separator and no leading dot; this keeps the promise explicit
    # without a filesystem call per file.
    if os.sep in name or name.startswith("."):
        raise ValueError(f"unsafe backup name {name!r}")
    return directory / day / name


def write_backups(directory: Path, items: Iterable[BackupItem]) -> list[Path]:
    """Write every item atomically: temp files, one flush to disk, renames, folder fsyncs.

    A reader sees either no file or a whole one; after return every file is on disk.
    One flush for the whole batch instead of one fsync per file keeps a batch of
    thousands cheap.
    """
    pending: list[tuple[Path, Path]] = []
    folders: set[Path] = set()
    try:
        for item in items:
            target = backup_path(directory, item)
            if target.parent not in folders:
                target.parent.mkdir(parents=True, exist_ok=True)
                folders.add(target.parent)
            payload = orjson.dumps(item.document, option=orjson.OPT_INDENT_2)
            pending.append((_write_temp(target, payload), target))
        _flush_to_disk(directory, [temp for temp, _ in pending])
        for temp, target in pending:
            os.replace(temp, target)
    except BaseException:
        for temp, _ in pending:
            temp.unlink(missing_ok=True)
        raise
    for folder in folders:
        fsync_path(folder)
    return [target for _, target in pending]


def _write_temp(target: Path, payload: bytes) -> Path:
    temp = target.with_name(f".tmp-{os.getpid()}-{next(_temp_counter)}-{target.name}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)
    return temp


def _flush_to_disk(directory: Path, files: list[Path]) -> None:
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
