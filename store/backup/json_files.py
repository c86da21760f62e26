"""JSON backups of analyses: one atomic file per analysis, in a folder per day.

Invariants: a backup's path is built from sanitised ids only (never a path from user input);
a reader sees no file or a whole one; after write_backups() returns, every file is on disk;
temp files live only in the `.incoming` folder, where opening the store sweeps stale ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from store.fileio import flush_to_disk, fsync_path, private_directory, safe_name, write_temp

# Temp files wait here, not beside their targets, so that sweeping stale ones (after a crash)
# reads one folder, not the whole tree of backups.
INCOMING = ".incoming"


def incoming_directory(directory: Path) -> Path:
    """The folder of a backups directory where files are written before their rename."""
    return directory / INCOMING


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
    incoming = incoming_directory(directory)
    try:
        private_directory(incoming)
        for item in items:
            target = backup_path(directory, item)
            if target.parent not in folders:
                private_directory(target.parent)
                folders.add(target.parent)
            payload = orjson.dumps(item.document, option=orjson.OPT_INDENT_2)
            pending.append((write_temp(target, payload, incoming), target))
        flush_to_disk(directory, [temp for temp, _ in pending])
        for temp, target in pending:
            os.replace(temp, target)
    except BaseException:
        for temp, _ in pending:
            temp.unlink(missing_ok=True)
        raise
    for folder in folders:
        fsync_path(folder)
    return [target for _, target in pending]
