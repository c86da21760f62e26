"""Full-text search over incidents: SQLite FTS5 kept by triggers, PostgreSQL a GIN index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Kept in step with store.queries.PG_SEARCH_VECTOR: PostgreSQL uses the index only
# when a query repeats this expression exactly.
PG_SEARCH_VECTOR = (
    "to_tsvector('simple', regexp_replace(incident_id || ' ' || title || ' ' || "
    "left(description, 100000) || ' ' || left(initial_findings, 100000), '[^[:alnum:]]+', ' ', "
    "'g'))"
)

SQLITE_TRIGGERS = """
CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN
  INSERT INTO incidents_fts(rowid, incident_id, title, description, initial_findings)
  VALUES (new.id, new.incident_id, new.title, new.description, new.initial_findings);
END;
CREATE TRIGGER incidents_fts_delete AFTER DELETE ON incidents BEGIN
  INSERT INTO incidents_fts(incidents_fts, rowid, incident_id, title, description,
                            initial_findings)
  VALUES ('delete', old.id, old.incident_id, old.title, old.description, old.initial_findings);
END;
CREATE TRIGGER incidents_fts_update AFTER UPDATE OF title, description, initial_findings
ON incidents
WHEN old.title IS NOT new.title OR old.description IS NOT new.description
  OR old.initial_findings IS NOT new.initial_findings
BEGIN
  INSERT INTO incidents_fts(incidents_fts, rowid, incident_id, title, description,
                            initial_findings)
  VALUES ('delete', old.id, old.incident_id, old.title, old.description, old.initial_findings);
  INSERT INTO incidents_fts(rowid, incident_id, title, description, initial_findings)
  VALUES (new.id, new.incident_id, new.title, new.description, new.initial_findings);
END;
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE incidents_fts USING fts5("
            "incident_id, title, description, initial_findings, "
            "content='incidents', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        for statement in SQLITE_TRIGGERS.split("END;"):
            if statement.strip():
                op.execute(statement + "END;")
        op.execute("INSERT INTO incidents_fts(incidents_fts) VALUES ('rebuild')")
    elif bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_incidents_search ON incidents USING gin (({PG_SEARCH_VECTOR}))"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("incidents_fts_insert", "incidents_fts_delete", "incidents_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS incidents_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_search")
