"""PostgreSQL row-level security: database roles mapped to incidex roles, restricted incidents
kept from a direct SQL client as from incidex."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from store.schemas import AnalysisIn
from store.settings import Settings
from store.store import Store
from tests.conftest import POSTGRES_URL, make_record


@pytest.fixture
def team_roles(postgres_schema_url: str, isolated_directories: Path) -> Iterator[dict[str, str]]:
    """A store with INC-2 restricted to team red, and two login roles: a lead of red and a lead
    of blue, each mapped to incidex users of the same name."""
    suffix = uuid.uuid4().hex[:8]
    roles = {"red": f"ix_{suffix}_rita", "blue": f"ix_{suffix}_bob"}
    schema = postgres_schema_url.rsplit("%3D", 1)[1]
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        for role in roles.values():
            connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    settings = Settings(data_dir=isolated_directories, database_url=postgres_schema_url)
    with Store.open(settings) as store:
        store.save_many([(f"r{n}", AnalysisIn.model_validate(make_record(f"INC-{n}")))
                         for n in (1, 2, 3)])
        for team, role in roles.items():
            store.add_user(role, "lead", [team])
        store.restrict_incident("INC-2", ["red"])
    with admin.begin() as connection:
        for role in roles.values():
            connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            connection.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN '
                                    f'SCHEMA "{schema}" TO "{role}"'))
            connection.execute(text(f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA '
                                    f'"{schema}" TO "{role}"'))
    try:
        yield {team: postgres_schema_url.replace("postgres@", f"{role}@", 1)
               for team, role in roles.items()}
    finally:
        with admin.begin() as connection:
            for role in roles.values():
                connection.execute(text(f'DROP OWNED BY "{role}"'))
                connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def scalar(url: str, statement: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            return connection.execute(text(statement)).scalar()
    finally:
        engine.dispose()


def test_a_direct_sql_client_sees_only_what_incidex_would(team_roles: dict[str, str]) -> None:
    blue, red = team_roles["blue"], team_roles["red"]
    count = "SELECT count(*) FROM {} WHERE incident_id = 'INC-2'"
    assert scalar(blue, count.format("incidents")) == 0
    assert scalar(blue, count.format("analyses")) == 0
    assert scalar(blue, "SELECT count(*) FROM incidents") == 2
    assert scalar(red, count.format("incidents")) == 1
    assert scalar(red, count.format("analyses")) == 1


def test_another_team_cannot_change_or_lift_the_restriction(team_roles: dict[str, str]) -> None:
    blue = team_roles["blue"]
    assert scalar(blue, "SELECT teams FROM incident_restrictions WHERE incident_id = 'INC-2'"
                  ) == "red"
    assert scalar(blue, "UPDATE incidents SET description = 'overwritten' "
                        "WHERE incident_id = 'INC-2' RETURNING 1") is None
    assert scalar(team_roles["red"], "SELECT description FROM incidents WHERE incident_id = "
                                     "'INC-2'") != "overwritten"


def test_an_analyst_cannot_restrict_by_sql(team_roles: dict[str, str],
                                           postgres_schema_url: str,
                                           isolated_directories: Path) -> None:
    settings = Settings(data_dir=isolated_directories, database_url=postgres_schema_url)
    blue_role = team_roles["blue"].split("//", 1)[1].split("@", 1)[0]
    with Store.open(settings) as store:
        store.add_user(blue_role, "analyst", ["blue"])
    with pytest.raises(DBAPIError, match="row-level security"):
        scalar(team_roles["blue"], "INSERT INTO incident_restrictions VALUES "
                                   "('INC-1', 'blue', now(), 'me')")
    assert scalar(team_roles["blue"], "DELETE FROM incident_restrictions RETURNING 1") is None
    assert scalar(team_roles["red"], "SELECT count(*) FROM incident_restrictions") == 1


def test_incidex_opened_as_a_database_role_runs_for_its_incidex_role(
        team_roles: dict[str, str], isolated_directories: Path) -> None:
    settings = Settings(data_dir=isolated_directories, database_url=team_roles["blue"])
    with Store.open(settings) as store:
        assert store.actor.role == "lead" and store.actor.teams == frozenset({"blue"})
        assert store.actor.name.endswith("_bob")
        ids = {row.incident_id for row in store.incidents_page(limit=10).rows}
        assert ids == {"INC-1", "INC-3"}
        assert store.incident("INC-1") is not None
    settings = Settings(data_dir=isolated_directories, database_url=team_roles["red"])
    with Store.open(settings) as store:
        assert store.incident("INC-2") is not None


def test_a_lead_cannot_make_themselves_admin_by_sql(team_roles: dict[str, str]) -> None:
    blue = team_roles["blue"]
    assert scalar(blue, "UPDATE users SET role = 'admin' WHERE name = current_user "
                        "RETURNING 1") is None
    with pytest.raises(DBAPIError, match="row-level security"):
        scalar(blue, "INSERT INTO users VALUES ('eve', 'admin', '', true, now(), 'eve') "
                     "RETURNING 1")
    assert scalar(blue, "SELECT role FROM users WHERE name = current_user") == "lead"


def test_a_viewer_role_reads_no_analyses_by_sql_and_an_analyst_reads_its_own(
        team_roles: dict[str, str], postgres_schema_url: str,
        isolated_directories: Path) -> None:
    settings = Settings(data_dir=isolated_directories, database_url=postgres_schema_url)
    blue = team_roles["blue"]
    blue_role = blue.split("//", 1)[1].split("@", 1)[0]
    with Store.open(settings) as store:
        store.add_user(blue_role, "viewer", ["blue"])
    assert scalar(blue, "SELECT count(*) FROM analyses") == 0
    assert scalar(blue, "SELECT count(*) FROM incidents") == 2  # the list incidex gives
    with pytest.raises(DBAPIError, match="row-level security"):
        scalar(blue, "INSERT INTO analyses (analysis_id, incident_id) VALUES ('x', 'INC-1')")
    with Store.open(settings) as store:
        store.add_user(blue_role, "analyst", ["blue"])
    assert scalar(blue, "SELECT count(*) FROM analyses") == 2  # not the restricted INC-2's


def test_a_database_role_incidex_does_not_know_reads_no_analyses(
        team_roles: dict[str, str], postgres_schema_url: str) -> None:
    blue = team_roles["blue"]
    blue_role = blue.split("//", 1)[1].split("@", 1)[0]
    scalar(postgres_schema_url, f"DELETE FROM users WHERE name = '{blue_role}' RETURNING 1")
    assert scalar(blue, "SELECT count(*) FROM analyses") == 0
