"""The store gets an identity and a write-sequence counter: one row in store_info.

The uuid lets an index snapshot or a cached result prove which store it came from. The counter
replaces max(seq) + 1 (SQLite, which reuses a deleted top seq) and nextval (PostgreSQL, whose
transactions commit out of seq order): it is taken with an UPDATE whose row lock is held until
commit, so sequence numbers become visible in order and a reader's `seq > mark` misses none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from store.db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    table = op.create_table(
        "store_info",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("embedding_seq", sa.BigInteger, nullable=False),
        sa.Column("pii_key_fingerprint", sa.String(64)),
        sa.Column("pii_key_reindexing", sa.String(64)),
        sa.CheckConstraint("id = 1", name="ck_store_info_one_row"),
    )
    # Numbers nextval handed to rolled-back saves belong to no row: the highest row's is enough.
    highest = bind.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM embeddings")).scalar_one()
    op.bulk_insert(table, [{"id": 1, "store_id": uuid.uuid4().hex,
                            "created_at": datetime.now(UTC), "embedding_seq": int(highest)}])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT setval('embeddings_seq_counter', GREATEST((SELECT embedding_seq "
                   "FROM store_info WHERE id = 1), 1))")
    op.drop_table("store_info")
