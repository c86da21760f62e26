"""Sort keys for the incident list: severity rank and known cost, each with a keyset index.

The list sorts by severity, analysis count and cost as well as by time and id. Each sort walks
an index of (key, updated_at, incident_id), so a page costs the same at a million incidents as
at a hundred. Severity is stored as a rank (critical highest) and cost as whole billionths of a
dollar, so that a page cursor compares exactly on both databases.

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None

SORT_INDEXES = {
    "ix_incidents_severity": ["severity_rank", "updated_at", "incident_id"],
    "ix_incidents_analyses": ["analysis_count", "updated_at", "incident_id"],
    "ix_incidents_cost": ["cost_nano_usd", "updated_at", "incident_id"],
    # Counts of a severity facet with a date range read this index only (14 s -> see bench).
    "ix_incidents_severity_created": ["severity_rank", "created_at"],
}
# Must match store.db.models.SEVERITY_RANKS.
RANK_CASE = """CASE lower(latest_severity)
    WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 WHEN 'low' THEN 2
    WHEN 'info' THEN 1 WHEN 'informational' THEN 1 ELSE 0 END"""


def upgrade() -> None:
    op.add_column("incidents", sa.Column("severity_rank", sa.Integer, nullable=False,
                                         server_default="0"))
    op.add_column("incidents", sa.Column("cost_nano_usd", sa.BigInteger, nullable=False,
                                         server_default="0"))
    integer = "BIGINT" if op.get_bind().dialect.name == "postgresql" else "INTEGER"
    op.execute(f"UPDATE incidents SET severity_rank = {RANK_CASE} "
               "WHERE latest_severity IS NOT NULL")
    op.execute(f"""
        UPDATE incidents SET cost_nano_usd = (
            SELECT CAST(round(sum(r.cost_usd) * 1000000000) AS {integer})
            FROM run_metadata r WHERE r.incident_id = incidents.incident_id)
        WHERE EXISTS (SELECT 1 FROM run_metadata r
                      WHERE r.incident_id = incidents.incident_id AND r.cost_usd IS NOT NULL)
    """)
    for name, columns in SORT_INDEXES.items():
        op.create_index(name, "incidents", columns)


def downgrade() -> None:
    for name in SORT_INDEXES:
        op.drop_index(name, "incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("cost_nano_usd")
        batch.drop_column("severity_rank")
