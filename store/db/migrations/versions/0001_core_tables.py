"""Core tables: incidents, analyses, run_metadata, embeddings.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _pk() -> sa.Column:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "incidents",
        _pk(),
        sa.Column("incident_id", sa.String(256), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("initial_findings", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("analysis_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("latest_severity", sa.String(32)),
        sa.Column("latest_analysis_at", UTCDateTime()),
    )
    op.create_index("ix_incidents_updated", "incidents", ["updated_at", "incident_id"])
    op.create_index("ix_incidents_created", "incidents", ["created_at", "incident_id"])

    op.create_table(
        "analyses",
        _pk(),
        sa.Column("analysis_id", sa.String(64), nullable=False, unique=True),
        sa.Column("incident_id", sa.String(256), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("analysis_json", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(32)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("incident_id", "content_hash", name="uq_analyses_incident_content"),
    )
    op.create_index("ix_analyses_incident", "analyses", ["incident_id", "created_at"])

    op.create_table(
        "run_metadata",
        _pk(),
        sa.Column("request_id", sa.String(256)),
        sa.Column("kind", sa.String(16), nullable=False, server_default="chat"),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("incident_id", sa.String(256)),
        sa.Column("analysis_id", sa.String(64)),
        sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("end_time", UTCDateTime(), nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(18, 10)),
        sa.Column("price_source", sa.String(256)),
    )
    op.create_index("ix_run_metadata_request_id", "run_metadata", ["request_id"])
    op.create_index("ix_run_metadata_start", "run_metadata", ["start_time"])
    op.create_index("ix_run_metadata_incident", "run_metadata", ["incident_id"])
    op.create_index("ix_run_metadata_model", "run_metadata", ["model_name"])

    op.create_table(
        "embeddings",
        sa.Column(
            "analysis_pk",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("embedder", sa.String(128), nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="ready"),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_embeddings_status", "embeddings", ["status"])


def downgrade() -> None:
    for table in ("embeddings", "run_metadata", "analyses", "incidents"):
        op.drop_table(table)
