"""The tables behind roles: incidex users and the incidents restricted to named teams."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, MetaData, String, Table

from store.db.models import UTCDateTime

access_metadata = MetaData()

users = Table(
    "users",
    access_metadata,
    # The OS user (SQLite) or the database role (PostgreSQL) this row gives a role to.
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    # Team names, comma-separated, sorted; empty for none.
    Column("teams", String(1024), nullable=False, default=""),
    Column("can_purge", Boolean, nullable=False, default=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("added_by", String(128), nullable=False),
)

incident_restrictions = Table(
    "incident_restrictions",
    access_metadata,
    Column("incident_id", String(256),
           ForeignKey("incidents.incident_id", ondelete="CASCADE"), primary_key=True),
    Column("teams", String(1024), nullable=False),
    Column("restricted_at", UTCDateTime(), nullable=False),
    Column("restricted_by", String(128), nullable=False),
)
