"""Folding the per-analysis JSON backups of earlier versions into the journal, once.

Resumable: files are folded in chunks; a chunk's journal lines are on disk before its files
are deleted, so a killed fold loses nothing, and running it again folds what is left (a chunk
folded but not yet deleted is journaled twice, which replay ignores: the same analysis_id).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from store.backup.entries import legacy_body
from store.backup.journal import Journal
from store.fileio import fsync_path

FOLD_CHUNK = 500
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{2}$")


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What a fold did."""

    folded: int
    unreadable: list[str]


def legacy_files(backups: Path) -> Iterator[Path]:
    """The per-analysis backups under backups/YYYY-MM/DD/, in path order."""
    if not backups.is_dir():
        return
    for month in sorted(p for p in backups.iterdir() if p.is_dir() and _MONTH.match(p.name)):
        for day in sorted(p for p in month.iterdir() if p.is_dir() and _DAY.match(p.name)):
            yield from sorted(p for p in day.iterdir()
                              if p.suffix == ".json" and not p.name.startswith("."))


def fold_legacy_files(backups: Path, journal: Journal) -> FoldReport:
    """Move every legacy per-analysis backup into the journal, dated by its file's time."""
    folded = 0
    unreadable: list[str] = []
    chunk: list[Path] = []
    for path in legacy_files(backups):
        chunk.append(path)
        if len(chunk) >= FOLD_CHUNK:
            folded += _fold_chunk(chunk, journal, unreadable)
            chunk = []
    if chunk:
        folded += _fold_chunk(chunk, journal, unreadable)
    return FoldReport(folded, unreadable)


def _fold_chunk(paths: list[Path], journal: Journal, unreadable: list[str]) -> int:
    by_day: dict[date, list[tuple[datetime, dict[str, object], Path]]] = defaultdict(list)
    for path in paths:
        try:
            document = json.loads(path.read_bytes())
            body = legacy_body(document)
            saved = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except (OSError, ValueError, KeyError, TypeError) as error:
            unreadable.append(f"{path}: {error}")
            continue
        by_day[saved.date()].append((saved, body, path))
    folded = 0
    for entries in by_day.values():
        committed_at = max(saved for saved, _body, _path in entries)
        journal.append_settled([body for _saved, body, _path in entries], committed_at)
        for _saved, _body, path in entries:
            path.unlink()
        folded += len(entries)
    for folder in {p.parent for p in paths}:
        _remove_if_empty(folder)
    return folded


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
        fsync_path(folder.parent)
        folder.parent.rmdir()
    except OSError:
        return
