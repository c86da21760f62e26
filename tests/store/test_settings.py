"""Settings come from the environment and an optional TOML file; the environment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.locations import backups_directory, database_url, secrets_directory
from store.settings import load_settings


def test_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "incidex.toml"
    config.write_text('chat_model = "gpt-4o"\nsave_batch_size = 50\n'
                      f'data_dir = "{tmp_path / "from-file"}"\n')
    monkeypatch.setenv("INCIDEX_CONFIG_FILE", str(config))
    monkeypatch.delenv("INCIDEX_DATA_DIR")
    monkeypatch.setenv("INCIDEX_SAVE_BATCH_SIZE", "75")
    settings = load_settings()
    assert settings.chat_model == "gpt-4o"
    assert settings.save_batch_size == 75  # the environment wins over the file
    assert database_url(settings) == f"sqlite:///{tmp_path / 'from-file' / 'incident_analysis.db'}"
    assert backups_directory(settings) == tmp_path / "from-file" / "backups"


def test_defaults_point_into_data_and_keys_outside(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("INCIDEX_DATA_DIR")
    monkeypatch.delenv("INCIDEX_SECRETS_DIR")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert database_url(settings).endswith(f"{tmp_path}/data/incident_analysis.db")
    assert secrets_directory(settings) == tmp_path / "config" / "incidex" / "secrets"


def test_explicit_overrides_win(tmp_path: Path) -> None:
    settings = load_settings(database_url="sqlite:///x.db", data_dir=None)
    assert settings.database_url == "sqlite:///x.db"
