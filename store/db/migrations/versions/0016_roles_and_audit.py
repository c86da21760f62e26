"""Roles and the audit log: users, incident restrictions, and the append-only audit_events.

audit_events refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) with triggers: the log is
only ever appended to. Someone with the database file can drop the trigger; the HMAC chain and
the signed anchors outside the database catch what they then change.

On PostgreSQL, row-level security (forced, so the tables' owner is held to it too; superusers
are not) keeps the rows of a restricted incident (its text and its analyses) from database
roles that incidex would not let read it, lets only leads and admins change restrictions and only
admins change roles:
a direct SQL client gets no more of a restricted incident than incidex gives.

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.db.models import UTCDateTime

revision = "0016"
down_revision = "0014"
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


# Whether the connection's role may see an incident's rows: unrestricted, or an admin, or a
# lead of one of its teams (the same rule as store.access.roles.Actor.may_read_restricted).
PG_MAY_SEE = """CREATE FUNCTION incidex_may_see(target text) RETURNS boolean
    LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT NOT EXISTS (SELECT 1 FROM incident_restrictions r WHERE r.incident_id = target)
        OR EXISTS (SELECT 1 FROM users u JOIN incident_restrictions r ON r.incident_id = target
                   WHERE u.name = current_user
                     AND (u.role = 'admin' OR (u.role = 'lead' AND
                          string_to_array(u.teams, ',') && string_to_array(r.teams, ','))))
    $$"""
PG_ROLE = """CREATE FUNCTION incidex_role() RETURNS text
    LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT role FROM users WHERE name = current_user $$"""
PG_ROW_SECURITY = [
    PG_MAY_SEE,
    PG_ROLE,
    *[statement for table in ("incidents", "analyses") for statement in (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"""CREATE POLICY {table}_restricted ON {table} FOR ALL
            USING (incidex_may_see(incident_id)) WITH CHECK (incidex_may_see(incident_id))""",
    )],
    # Roles change only by an admin (or the first user of an empty store, its creator).
    "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE users FORCE ROW LEVEL SECURITY",
    "CREATE POLICY users_read ON users FOR SELECT USING (true)",
    """CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (
        incidex_role() = 'admin' OR NOT EXISTS (SELECT 1 FROM users))""",
    "CREATE POLICY users_update ON users FOR UPDATE USING (incidex_role() = 'admin')",
    "CREATE POLICY users_delete ON users FOR DELETE USING (incidex_role() = 'admin')",
    "ALTER TABLE incident_restrictions ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE incident_restrictions FORCE ROW LEVEL SECURITY",
    "CREATE POLICY restrictions_read ON incident_restrictions FOR SELECT USING (true)",
    *[f"""CREATE POLICY restrictions_{verb.lower()} ON incident_restrictions FOR {verb}
          {clause} (incidex_role() IN ('lead', 'admin'))"""
      for verb, clause in (("INSERT", "WITH CHECK"), ("UPDATE", "USING"), ("DELETE", "USING"))],
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
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_ROW_SECURITY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("incidents", "analyses"):
            op.execute(f"DROP POLICY {table}_restricted ON {table}")
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION incidex_may_see(text)")
    op.drop_table("incident_restrictions")
    op.drop_table("users")
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_events_refuse() CASCADE")
        op.execute("DROP FUNCTION incidex_role()")
