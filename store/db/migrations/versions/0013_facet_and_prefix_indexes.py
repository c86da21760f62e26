"""Indexes for the list's slow corners: the `model:` facet and, on PostgreSQL, id prefixes.

A `model:` facet asks, for each incident the page walks, whether one of its analyses is by that
model. With only (incident_id, created_at) indexed, each probe reads the analysis rows (their
JSON included); (incident_id, model_name) answers it from the index (bench/model_facet.py).
On PostgreSQL, `LIKE 'INC-2026%'` can use a b-tree only under the C collation or with
text_pattern_ops, so the jump prompt's id-prefix lookup scanned the table; SQLite's lookup
uses a range on the unique index instead and needs nothing here.

Revision ID: 0013
Revises: 0016
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_analyses_incident_model", "analyses", ["incident_id", "model_name"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_incidents_id_pattern", "incidents", ["incident_id"],
                        postgresql_ops={"incident_id": "text_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_incidents_id_pattern", table_name="incidents")
    op.drop_index("ix_analyses_incident_model", table_name="analyses")
