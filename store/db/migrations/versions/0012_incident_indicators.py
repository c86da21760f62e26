"""Indicators of compromise per incident: an indexed table, filled for existing incidents.

Each row is one indicator (IP, domain, URL, e-mail, hash, CVE or ATT&CK id, or a value an
analysis listed as an IOC) found in an incident's text or in any of its analyses. Deleting an
incident removes its rows (ON DELETE CASCADE), so a purge leaves no indicator behind. The
backfill reads the incidents in keyset batches of their ids and commits nothing of its own:
the whole upgrade is one transaction, as every migration here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    op.create_table(
        "incident_indicators",
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("incident_id", sa.String(256),
                  sa.ForeignKey("incidents.incident_id", name="fk_incident_indicators_incident",
                                ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_incident_indicators_incident", "incident_indicators",
                    ["incident_id", "value"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_incident_indicators_incident", "incident_indicators")
    op.drop_table("incident_indicators")


def _backfill(connection: sa.Connection) -> None:
    """Extract the indicators of every stored incident and its analyses."""
    from store.indicators import indicators_of_incident

    after = ""
    while True:
        incidents = connection.execute(sa.text(
            "SELECT incident_id, title, description, initial_findings FROM incidents "
            "WHERE incident_id > :after ORDER BY incident_id LIMIT :batch"),
            {"after": after, "batch": BATCH}).all()
        if not incidents:
            return
        ids = [row.incident_id for row in incidents]
        analyses: dict[str, list[object]] = {}
        for incident_id, analysis_json in connection.execute(sa.text(
                "SELECT incident_id, analysis_json FROM analyses "
                "WHERE incident_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": ids}):
            analyses.setdefault(incident_id, []).append(json.loads(analysis_json))
        rows: list[dict[str, str]] = []
        for row in incidents:
            found = indicators_of_incident(row.title, row.description, row.initial_findings,
                                           analyses.get(row.incident_id, []))
            rows.extend({"value": indicator.value, "incident_id": row.incident_id,
                         "kind": indicator.kind} for indicator in found)
        if rows:
            connection.execute(sa.text(
                "INSERT INTO incident_indicators (value, incident_id, kind) "
                "VALUES (:value, :incident_id, :kind)"), rows)
        after = ids[-1]
