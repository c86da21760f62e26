"""Encryption at rest: data key ids on sealed rows, a blind index instead of clear-text search,
and purge tombstones.

- incidents.key_id / analyses.key_id: the data key a row's text was sealed with (hex), NULL for
  a clear-text row (a store from before encryption, until `incidex keys encrypt-store`).
- incidents.search_terms: keyed tokens of the words of the incident's description, findings and
  analyses (store.crypto.blind_index); the text index reads it instead of the text.
- The text index (SQLite FTS5, PostgreSQL GIN) is rebuilt over incident_id, title and
  search_terms: it must never hold a word of sealed text in clear.
- purge_tombstones: one content-free row per purged incident (hashed id, time, who, counts).

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

# Kept in step with store.db.models.PG_SEARCH_VECTOR.
PG_SEARCH_VECTOR = (
    "(setweight(to_tsvector('simple', regexp_replace(incident_id || ' ' || title, "
    "'[^[:alnum:]]+', ' ', 'g')), 'A') || setweight(to_tsvector('simple', search_terms), 'B'))"
)
OLD_PG_SEARCH_VECTOR = (
    "to_tsvector('simple', regexp_replace(incident_id || ' ' || title || ' ' || "
    "left(description, 100000) || ' ' || left(initial_findings, 100000), '[^[:alnum:]]+', ' ', "
    "'g'))"
)
NEW_FTS_COLUMNS = ("incident_id", "title", "search_terms")
OLD_FTS_COLUMNS = ("incident_id", "title", "description", "initial_findings")
OLD_TRIGGERS = ("incidents_fts_insert", "incidents_fts_delete", "incidents_fts_update")


def upgrade() -> None:
    op.add_column("incidents", sa.Column("key_id", sa.String(32)))
    op.add_column("incidents", sa.Column("search_terms", sa.Text, nullable=False,
                                         server_default=""))
    op.add_column("analyses", sa.Column("key_id", sa.String(32)))
    op.create_table(
        "purge_tombstones",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("incident_hash", sa.String(64), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_by", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("analyses", sa.Integer, nullable=False),
        sa.Column("run_metadata", sa.Integer, nullable=False),
        sa.Column("embeddings", sa.Integer, nullable=False),
        sa.Column("backups", sa.Integer, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite_fts(NEW_FTS_COLUMNS)
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_search")
        op.execute(f"CREATE INDEX ix_incidents_search ON incidents USING gin ({PG_SEARCH_VECTOR})")


def _rebuild_sqlite_fts(columns: tuple[str, ...]) -> None:
    """An FTS5 table over these columns of incidents, kept by triggers, filled from the rows."""
    for name in OLD_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS incidents_fts")
    listed = ", ".join(columns)
    new = ", ".join(f"new.{column}" for column in columns)
    old = ", ".join(f"old.{column}" for column in columns)
    watched = [column for column in columns if column != "incident_id"]
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in watched)
    op.execute(f"CREATE VIRTUAL TABLE incidents_fts USING fts5({listed}, content='incidents', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    op.execute(f"CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN "
               f"INSERT INTO incidents_fts(rowid, {listed}) VALUES (new.id, {new}); END;")
    op.execute(f"CREATE TRIGGER incidents_fts_delete AFTER DELETE ON incidents BEGIN "
               f"INSERT INTO incidents_fts(incidents_fts, rowid, {listed}) "
               f"VALUES ('delete', old.id, {old}); END;")
    op.execute(f"CREATE TRIGGER incidents_fts_update AFTER UPDATE OF {', '.join(watched)} "
               f"ON incidents WHEN {changed} BEGIN "
               f"INSERT INTO incidents_fts(incidents_fts, rowid, {listed}) "
               f"VALUES ('delete', old.id, {old}); "
               f"INSERT INTO incidents_fts(rowid, {listed}) VALUES (new.id, {new}); END;")
    op.execute("INSERT INTO incidents_fts(incidents_fts) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_search")
    else:
        for name in OLD_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS incidents_fts")
    op.drop_table("purge_tombstones")
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("key_id")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("search_terms")
        batch.drop_column("key_id")
    if bind.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_incidents_search ON incidents USING gin "
                   f"(({OLD_PG_SEARCH_VECTOR}))")
    elif bind.dialect.name == "sqlite":
        _rebuild_sqlite_fts(OLD_FTS_COLUMNS)
