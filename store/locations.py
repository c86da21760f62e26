"""Where incidex keeps its files: every path comes from a function of the settings."""

from __future__ import annotations

import os
from pathlib import Path

from store.settings import Settings, default_config_file


def data_directory(settings: Settings) -> Path:
    """The data directory, absolute."""
    return settings.data_dir.expanduser().resolve()


def database_url(settings: Settings) -> str:
    """The store's SQLAlchemy URL: the setting, or SQLite in the data directory."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{data_directory(settings) / 'incident_analysis.db'}"


def backups_directory(settings: Settings) -> Path:
    """Where JSON backups of analyses land."""
    return data_directory(settings) / "backups"


def index_directory(settings: Settings) -> Path:
    """Where vector index snapshots land."""
    return data_directory(settings) / "index"


def cache_directory(settings: Settings) -> Path:
    """Where the embedded on-disk cache lives."""
    return data_directory(settings) / "cache"


def secrets_directory(settings: Settings) -> Path:
    """Keys that must not sit beside the data they protect (outside the data directory)."""
    if settings.secrets_dir is not None:
        return settings.secrets_dir.expanduser().resolve()
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base else default_config_file().parent.parent
    return root / "incidex" / "secrets"


def state_file(settings: Settings) -> Path:
    """The app's remembered view (sort order and the like), beside the config file, not in data/."""
    config = settings.config_file or os.environ.get("INCIDEX_CONFIG_FILE")
    folder = Path(config).expanduser().parent if config else default_config_file().parent
    return folder.resolve() / "state.json"
