"""Reading what the backup journal holds, for tests."""

from __future__ import annotations

from pathlib import Path

from store.backup.journal import journal_directory, scan


def journaled_ids(backups: Path) -> list[str]:
    """The analysis ids of every committed journal record (repeats kept), after checking that
    the journal has no damage."""
    found = scan(journal_directory(backups))
    assert found.damage == [], found.damage
    return [r.analysis_id for batch in found.committed() for r in batch.landed()]
