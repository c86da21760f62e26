"""Usage totals read only indexes: model, day and incident indexes carry tokens and cost.

At a million calls the usage screen's group-bys went from seconds of row lookups to
index-only scans.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MEASURES = ["input_tokens", "output_tokens", "total_tokens", "cost_usd"]
COVERING = {
    "ix_run_metadata_model": ["model_name", "start_time", *MEASURES],
    "ix_run_metadata_start": ["start_time", "total_tokens", "cost_usd"],
    "ix_run_metadata_incident": ["incident_id", *MEASURES],
}
PLAIN = {
    "ix_run_metadata_model": ["model_name"],
    "ix_run_metadata_start": ["start_time"],
    "ix_run_metadata_incident": ["incident_id"],
}


def upgrade() -> None:
    for name, columns in COVERING.items():
        op.drop_index(name, "run_metadata")
        op.create_index(name, "run_metadata", columns)


def downgrade() -> None:
    for name, columns in PLAIN.items():
        op.drop_index(name, "run_metadata")
        op.create_index(name, "run_metadata", columns)
