"""The store remembers which blind-index key its search terms and content hashes were made with.

store_info.index_key_fingerprint: a keyed digest of SECRETS_DIR/keyring/index.hmac (never the
key), recorded on the key's first use. A store that has one refuses to make a new key when the
file is gone, and refuses another key: either would leave every stored search term, indicator
token and content hash silently unmatched.

Revision ID: 0020
Revises: 0017
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("store_info") as batch:
        batch.add_column(sa.Column("index_key_fingerprint", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("store_info") as batch:
        batch.drop_column("index_key_fingerprint")
