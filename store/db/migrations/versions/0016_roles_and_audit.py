"""Roles and the audit log: users, incident restrictions, and the append-only audit_events.

audit_events refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) with triggers: the log is
only ever appended to. Someone with the database file can drop the trigger; the HMAC chain and
the signed anchors outside the database catch what they then change.

Revision ID: 0016
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.db.models import UTCDateTime

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None

REFUSAL = "audit_events is append-only"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
    for verb in ("UPDATE", "DELETE")
]
PG_TRIGGERS = [
    f"""CREATE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$""",
    """CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_refuse()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse()""",
]


def upgrade() -> None:
    big_integer = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "audit_events",
        sa.Column("seq", big_integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(256)),
        sa.Column("analysis_id", sa.String(64)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "seq"])
    op.create_index("ix_audit_events_incident", "audit_events", ["incident_id", "seq"])
    triggers = PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("teams", sa.String(1024), nullable=False),
        sa.Column("can_purge", sa.Boolean, nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "incident_restrictions",
        sa.Column("incident_id", sa.String(256),
                  sa.ForeignKey("incidents.incident_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("teams", sa.String(1024), nullable=False),
        sa.Column("restricted_at", UTCDateTime(), nullable=False),
        sa.Column("restricted_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_restrictions")
    op.drop_table("users")
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_events_refuse() CASCADE")
