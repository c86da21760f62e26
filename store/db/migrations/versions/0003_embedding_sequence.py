"""Embeddings get a write sequence so that readers catch up on every new or refilled vector.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
    # Rows written before this revision get their analysis id as sequence: same order.
    op.execute("UPDATE embeddings SET seq = analysis_pk")
    op.create_index("ix_embeddings_seq", "embeddings", ["seq"])
    if bind.dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE embeddings_seq_counter")
        op.execute("SELECT setval('embeddings_seq_counter', "
                   "GREATEST(COALESCE((SELECT max(seq) FROM embeddings), 0), 1))")


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_embeddings_seq", "embeddings")
    with op.batch_alter_table("embeddings") as batch:
        batch.drop_column("seq")
    if bind.dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS embeddings_seq_counter")
