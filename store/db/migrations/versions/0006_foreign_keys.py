"""Foreign keys: analyses belong to incidents, vectors and model calls to analyses.

Deleting an incident (the purge) removes its analyses and their vectors with it, while the
model calls that served them keep their tokens and cost and lose only the link. Rows that would
break a key are repaired first, never dropped: an analysis whose incident row is missing gets an
incident row built from it, a vector whose analysis is gone is removed (vectors are derived and
rebuilt by `incidex reindex`), a model call pointing at a missing analysis keeps its numbers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, constraint, local column, referred table, referred column, on delete)
FOREIGN_KEYS = [
    ("analyses", "fk_analyses_incident", "incident_id", "incidents", "incident_id", "CASCADE"),
    ("embeddings", "fk_embeddings_analysis", "analysis_pk", "analyses", "id", "CASCADE"),
    ("run_metadata", "fk_run_metadata_analysis", "analysis_id", "analyses", "analysis_id",
     "SET NULL"),
]


def upgrade() -> None:
    _repair_orphans()
    # SQLite rebuilds each table to add a key; the parents go first, so that no table is ever
    # dropped while another one refers to it.
    for table, name, column, referred, referred_column, on_delete in FOREIGN_KEYS:
        with op.batch_alter_table(table, recreate="auto") as batch:
            batch.create_foreign_key(name, referred, [column], [referred_column],
                                     ondelete=on_delete)


def downgrade() -> None:
    for table, name, *_rest in reversed(FOREIGN_KEYS):
        with op.batch_alter_table(table, recreate="auto") as batch:
            batch.drop_constraint(name, type_="foreignkey")


def _repair_orphans() -> None:
    op.execute("""
        INSERT INTO incidents (incident_id, title, description, initial_findings, created_at,
                               updated_at, analysis_count, latest_severity, latest_analysis_at)
        SELECT a.incident_id, '', '', '', min(a.created_at), max(a.created_at), count(*),
               NULL, max(a.created_at)
        FROM analyses a
        WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.incident_id = a.incident_id)
        GROUP BY a.incident_id
    """)
    op.execute("DELETE FROM embeddings WHERE NOT EXISTS "
               "(SELECT 1 FROM analyses a WHERE a.id = embeddings.analysis_pk)")
    op.execute("UPDATE run_metadata SET analysis_id = NULL WHERE analysis_id IS NOT NULL "
               "AND NOT EXISTS (SELECT 1 FROM analyses a "
               "WHERE a.analysis_id = run_metadata.analysis_id)")
