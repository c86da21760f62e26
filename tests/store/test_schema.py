"""The schema: migrations build exactly what the models declare, and foreign keys hold."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from store.db.engine import make_engine
from store.db.migrate import upgrade
from store.db.models import SQLModel
from store.locations import database_url
from store.store import Store
from tests.conftest import make_record

TABLES = ("incidents", "analyses", "run_metadata", "embeddings", "store_info")


EXPRESSION = ("<expression>",)


def _declared(dialect: str) -> dict[str, dict[str, Any]]:
    shapes: dict[str, dict[str, Any]] = {}
    for name in TABLES:
        table = SQLModel.metadata.tables[name]
        indexes = {index.name: tuple(column.name for column in index.columns) or EXPRESSION
                   for index in table.indexes if _built_on(index, dialect)}
        shapes[name] = {
            "columns": {column.name: column.nullable for column in table.columns},
            "primary_key": tuple(column.name for column in table.primary_key.columns),
            "indexes": indexes,
            "foreign_keys": {(fk.constraint.name if fk.constraint is not None else None,
                              fk.parent.name, fk.column.table.name, fk.column.name,
                              (fk.ondelete or "NO ACTION").upper())
                             for fk in table.foreign_keys},
            "unique": {tuple(sorted(column.name for column in constraint.columns))
                       for constraint in table.constraints
                       if constraint.__class__.__name__ == "UniqueConstraint"}
            | {(column.name,) for column in table.columns if column.unique},
        }
    return shapes


def _built_on(index: Any, dialect: str) -> bool:
    condition = getattr(index, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect)


def _built(engine: Engine) -> dict[str, dict[str, Any]]:
    inspector = inspect(engine)
    shapes: dict[str, dict[str, Any]] = {}
    for name in TABLES:
        unique = {tuple(sorted(constraint["column_names"]))
                  for constraint in inspector.get_unique_constraints(name)}
        indexes: dict[str | None, tuple[str, ...]] = {}
        for index in inspector.get_indexes(name):
            columns = tuple(str(column) for column in index["column_names"])
            if index.get("expressions"):
                columns = EXPRESSION
            if index.get("unique") and not str(index["name"]).startswith("ix_"):
                unique.add(tuple(sorted(columns)))
                continue
            indexes[index["name"]] = columns
        shapes[name] = {
            "columns": {column["name"]: column["nullable"]
                        for column in inspector.get_columns(name)},
            "primary_key": tuple(inspector.get_pk_constraint(name)["constrained_columns"]),
            "indexes": indexes,
            "foreign_keys": {(fk["name"], fk["constrained_columns"][0], fk["referred_table"],
                              fk["referred_columns"][0],
                              (fk.get("options", {}).get("ondelete") or "NO ACTION").upper())
                             for fk in inspector.get_foreign_keys(name)},
            "unique": unique,
        }
    return shapes


def test_a_blank_database_migrated_to_head_has_what_the_models_declare(settings: Any) -> None:
    engine = make_engine(database_url(settings))
    try:
        upgrade(engine)
        built, declared = _built(engine), _declared(engine.dialect.name)
        for name in TABLES:
            for aspect in ("columns", "primary_key", "foreign_keys", "indexes"):
                assert built[name][aspect] == declared[name][aspect], (name, aspect)
            # Unique constraints may be built as unique indexes (SQLite reports them so).
            assert declared[name]["unique"] <= built[name]["unique"] | {
                tuple(sorted(columns)) for columns in built[name]["indexes"].values()}, name
    finally:
        engine.dispose()


def test_foreign_keys_hold_and_cascade(store: Any) -> None:
    from store.schemas import AnalysisIn

    store.save_analysis(AnalysisIn.model_validate(make_record("FK-1")))
    store.save_analysis(AnalysisIn.model_validate(make_record("FK-2")))
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO analyses (analysis_id, incident_id, model_name, analysis_json,"
            " content_hash, created_at) VALUES ('lost', 'NO-SUCH-INCIDENT', 'm', '{}', 'h',"
            " CURRENT_TIMESTAMP)"))
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO embeddings (analysis_pk, embedder, dimension, status, updated_at)"
            " VALUES (987654, 'e', 0, 'pending', CURRENT_TIMESTAMP)"))
    with store.engine.begin() as connection:
        tokens_before = connection.execute(text(
            "SELECT sum(total_tokens) FROM run_metadata")).scalar()
        connection.execute(text("DELETE FROM incidents WHERE incident_id = 'FK-1'"))
    with store.engine.connect() as connection:
        count = lambda sql: connection.execute(text(sql)).scalar()  # noqa: E731
        assert count("SELECT count(*) FROM analyses WHERE incident_id = 'FK-1'") == 0
        assert count("SELECT count(*) FROM analyses") == 1
        assert count("SELECT count(*) FROM embeddings") == 1
        # Model calls keep their numbers and lose only the link to the deleted analysis.
        assert count("SELECT count(*) FROM run_metadata") == 2
        assert count("SELECT count(*) FROM run_metadata WHERE analysis_id IS NULL") == 1
        assert count("SELECT sum(total_tokens) FROM run_metadata") == tokens_before


def test_a_store_at_0001_with_orphans_upgrades_and_keeps_every_row(settings: Any) -> None:
    engine = make_engine(database_url(settings))
    upgrade(engine, "0001")
    at = {"t": "2026-01-02 03:04:05"}
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO incidents (incident_id, title, description, initial_findings,"
            " created_at, updated_at, analysis_count) VALUES ('OLD-1', 'Legacy beaconing',"
            " 'Host calls out every 60 s', '', :t, :t, 1)"), at)
        for analysis_id, incident_id in (("an-1", "OLD-1"), ("an-orphan", "GONE-1")):
            connection.execute(text(
                "INSERT INTO analyses (analysis_id, incident_id, model_name, analysis_json,"
                " content_hash, created_at) VALUES (:a, :i, 'gpt-4o', '{\"a\": 1}', :a, :t)"),
                {**at, "a": analysis_id, "i": incident_id})
        connection.execute(text(
            "INSERT INTO run_metadata (kind, model_name, incident_id, analysis_id, input_tokens,"
            " output_tokens, total_tokens, start_time, end_time, duration_seconds) VALUES"
            " ('chat', 'gpt-4o', 'OLD-1', 'an-missing', 10, 5, 15, :t, :t, 1.0)"), at)
        connection.execute(text(
            "INSERT INTO embeddings (analysis_pk, embedder, dimension, status, updated_at)"
            " VALUES (424242, 'e', 0, 'pending', :t)"), at)
    engine.dispose()
    with Store.open(settings) as store, store.engine.connect() as connection:
        count = lambda sql: connection.execute(text(sql)).scalar()  # noqa: E731
        assert count("SELECT count(*) FROM analyses") == 2
        assert count("SELECT count(*) FROM incidents WHERE incident_id = 'GONE-1'") == 1
        assert count("SELECT total_tokens FROM run_metadata") == 15
        assert count("SELECT analysis_id FROM run_metadata") is None
        assert count("SELECT count(*) FROM embeddings") == 0
        assert [r.incident_id for r in store.incidents_page(query="beaconing").rows] == ["OLD-1"]
        assert {fk["name"] for fk in inspect(connection).get_foreign_keys("analyses")} == {
            "fk_analyses_incident"}
