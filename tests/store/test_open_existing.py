"""Store.open(create=False) opens an existing store only: nothing is created by a read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store.errors import StoreUnavailable
from store.settings import Settings
from store.store import Store


def test_an_existing_store_opens_and_an_empty_database_does_not(settings: Any) -> None:
    with pytest.raises(StoreUnavailable, match="no incidex store in|no store at|no data directory"):
        Store.open(settings, create=False)
    Store.open(settings).close()
    with Store.open(settings, create=False) as store:
        assert store.summary().analyses == 0


def test_a_missing_data_directory_or_file_is_not_created(tmp_path: Path) -> None:
    missing_directory = tmp_path / "dta"
    with pytest.raises(StoreUnavailable, match=f"no data directory {missing_directory}"):
        Store.open(Settings(data_dir=missing_directory), create=False)
    assert not missing_directory.exists()
    empty_directory = tmp_path / "empty"
    empty_directory.mkdir()
    with pytest.raises(StoreUnavailable, match="no store at .*incident_analysis.db"):
        Store.open(Settings(data_dir=empty_directory), create=False)
    assert list(empty_directory.iterdir()) == []


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "incident_analysis.db").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="no incidex store in"):
        Store.open(Settings(data_dir=tmp_path), create=False)
    (tmp_path / "incident_analysis.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreUnavailable, match="cannot open the store at"):
        Store.open(Settings(data_dir=tmp_path), create=False)
