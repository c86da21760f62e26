"""Everything incidex writes under the data directory is readable by its owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.cache.disk import DiskBackend
from store.fileio import private_directory, write_private_file
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from tests.conftest import make_record


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which files come out 0644 and folders 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def shared_with_others(root: Path) -> list[str]:
    """Every path under root (root included) that group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def test_store_files_are_owner_only_under_umask_022(umask_022: None,
                                                     isolated_directories: Path) -> None:
    from tui.importing import write_export

    data = isolated_directories
    with Store.open(Settings(data_dir=data)) as store:
        records = [(f"line {n}", validate_record(make_record(f"INC-{n}"), f"line {n}"))
                   for n in range(5)]
        store.save_many(records)
        store.similar("fake invoice with a macro", k=3)
        store.similar(incident_id="INC-1", k=3)
        assert store.vectors.snapshot(force=True)
        DiskBackend(data / "cache" / "big").set("ns", "key", b"x" * 200_000, None)
        write_export(data / "exports" / "INC-1.json", '{"incident_id": "INC-1"}')
        # The WAL and shared-memory files exist while connections are open.
        names = {path.name for path in data.iterdir()}
        assert {"incident_analysis.db-wal", "incident_analysis.db-shm"} <= names
        assert shared_with_others(data) == []
    assert (data / "index" / "vectors.snapshot").exists()
    assert list((data / "backups" / "journal").glob("*.jsonl"))
    assert list((data / "cache").rglob("*.val"))
    assert shared_with_others(data) == []


def test_existing_folders_keep_their_mode(umask_022: None, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_directory(shared / "a" / "b")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "a").stat().st_mode) == 0o700
    written = write_private_file(shared / "a" / "b" / "f.json", b"{}")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert written.read_bytes() == b"{}"
