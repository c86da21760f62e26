"""Shared fixtures: every test gets its own data and config directories, and a store per backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "INCIDEX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def shared_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the session: caches derived from installed packages (the offline
    embedder's word table) are built once, not once per test, and never in the home folder."""
    return tmp_path_factory.mktemp("cache-home")


@pytest.fixture(autouse=True)
def isolated_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         shared_cache_home: Path) -> Path:
    """Point data, config and secrets at tmp_path so no test touches data/ or the home folder."""
    data = tmp_path / "data"
    monkeypatch.setenv("INCIDEX_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache_home))
    monkeypatch.setenv("INCIDEX_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("INCIDEX_BACKUP_AUTO", "0")  # the TUI's background backups: opt-in here
    # No save server outlives a test: the save server's own tests turn it on where they need it.
    monkeypatch.setenv("INCIDEX_SAVE_SERVER", "off")
    for name in ("INCIDEX_DATABASE_URL", "INCIDEX_REDIS_URL", "INCIDEX_CONFIG_FILE",
                 "INCIDEX_EMBEDDER", "INCIDEX_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return data


def postgres_available() -> bool:
    """Whether the test PostgreSQL answers; in CI its absence is a failure, not a skip."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False
    finally:
        engine.dispose()


_postgres_state: dict[str, bool] = {}


def require_postgres() -> None:
    """Skip (or fail in CI) when PostgreSQL does not answer."""
    if "up" not in _postgres_state:
        _postgres_state["up"] = postgres_available()
    if not _postgres_state["up"]:
        if IN_CI:
            pytest.fail(f"PostgreSQL must answer in CI at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped after the test."""
    from sqlalchemy import create_engine, text

    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, isolated_directories: Path) -> str:
    """The store's URL: a SQLite file in tmp_path, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{isolated_directories / 'incident_analysis.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def settings(database_url: str, isolated_directories: Path) -> Any:
    """Settings for a test store on the parametrised backend."""
    from store.settings import Settings

    return Settings(data_dir=isolated_directories, database_url=database_url)


@pytest.fixture
def store(settings: Any) -> Iterator[Any]:
    """An open store on the parametrised backend."""
    from store.store import Store

    opened = Store.open(settings)
    yield opened
    opened.close()


def make_record(incident_id: str = "INC-1", **overrides: Any) -> dict[str, Any]:
    """A valid --save record; keyword arguments replace top-level parts."""
    record: dict[str, Any] = {
        "incident": {
            "incident_id": incident_id,
            "title": f"Phishing wave {incident_id}",
            "description": "Users in finance received a fake invoice with a macro attachment.",
            "initial_findings": "Mail gateway alert; one user opened the attachment.",
        },
        "analysis": {"summary": f"Phishing for {incident_id}", "severity": "high"},
        "model_name": "gpt-4o-mini",
        "usage": {
            "input_tokens": 1200,
            "output_tokens": 300,
            "start_time": "2026-11-20T10:00:00Z",
            "end_time": "2026-11-20T10:00:06Z",
            "request_id": f"req-{incident_id}",
        },
    }
    record.update(overrides)
    return record


@pytest.fixture
def openai_server() -> Iterator[Any]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (tests/support/openai_server.py)."""
    from tests.support.openai_server import OpenAIServer

    with OpenAIServer(dimension=64) as server:
        yield server
